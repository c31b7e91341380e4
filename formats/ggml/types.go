// Package ggml is the table of ggml tensor types: their ids as stored in GGUF
// files, their block sizes and their bytes per block (for the formats this
// project encodes, taken from package block, which holds their layouts). The values are the ones
// in llama.cpp's ggml/src/ggml.c type traits (b4748, plus MXFP4 from later
// builds), so a file written here is read the same way by llama.cpp.
package ggml

import (
	"fmt"
	"strings"

	"github.com/llqt/llqt/formats/block"
)

// Type is a ggml tensor type id, as stored in a GGUF tensor info.
type Type uint32

// The ggml type ids. Ids 4, 5, 31–33 and 36–38 were removed from ggml and are
// rejected as unknown.
const (
	TypeF32     Type = 0
	TypeF16     Type = 1
	TypeQ4_0    Type = 2
	TypeQ4_1    Type = 3
	TypeQ5_0    Type = 6
	TypeQ5_1    Type = 7
	TypeQ8_0    Type = 8
	TypeQ8_1    Type = 9
	TypeQ2_K    Type = 10
	TypeQ3_K    Type = 11
	TypeQ4_K    Type = 12
	TypeQ5_K    Type = 13
	TypeQ6_K    Type = 14
	TypeQ8_K    Type = 15
	TypeIQ2_XXS Type = 16
	TypeIQ2_XS  Type = 17
	TypeIQ3_XXS Type = 18
	TypeIQ1_S   Type = 19
	TypeIQ4_NL  Type = 20
	TypeIQ3_S   Type = 21
	TypeIQ2_S   Type = 22
	TypeIQ4_XS  Type = 23
	TypeI8      Type = 24
	TypeI16     Type = 25
	TypeI32     Type = 26
	TypeI64     Type = 27
	TypeF64     Type = 28
	TypeIQ1_M   Type = 29
	TypeBF16    Type = 30
	TypeTQ1_0   Type = 34
	TypeTQ2_0   Type = 35
	TypeMXFP4   Type = 39
)

type traits struct {
	name      string
	blockSize int // elements per block
	typeSize  int // bytes per block
}

var table = map[Type]traits{
	TypeF32:     {"F32", 1, 4},
	TypeF16:     {"F16", 1, 2},
	TypeQ4_0:    {"Q4_0", block.QK, block.Q4_0Bytes},
	TypeQ4_1:    {"Q4_1", block.QK, block.Q4_1Bytes},
	TypeQ5_0:    {"Q5_0", block.QK, block.Q5_0Bytes},
	TypeQ5_1:    {"Q5_1", block.QK, block.Q5_1Bytes},
	TypeQ8_0:    {"Q8_0", block.QK, block.Q8_0Bytes},
	TypeQ8_1:    {"Q8_1", block.QK, block.Q8_1Bytes},
	TypeQ2_K:    {"Q2_K", block.QK_K, block.Q2_KBytes},
	TypeQ3_K:    {"Q3_K", block.QK_K, block.Q3_KBytes},
	TypeQ4_K:    {"Q4_K", block.QK_K, block.Q4_KBytes},
	TypeQ5_K:    {"Q5_K", block.QK_K, block.Q5_KBytes},
	TypeQ6_K:    {"Q6_K", block.QK_K, block.Q6_KBytes},
	TypeQ8_K:    {"Q8_K", block.QK_K, block.Q8_KBytes},
	TypeIQ2_XXS: {"IQ2_XXS", block.QK_K, block.IQ2_XXSBytes},
	TypeIQ2_XS:  {"IQ2_XS", block.QK_K, block.IQ2_XSBytes},
	TypeIQ3_XXS: {"IQ3_XXS", block.QK_K, block.IQ3_XXSBytes},
	TypeIQ1_S:   {"IQ1_S", block.QK_K, block.IQ1_SBytes},
	TypeIQ4_NL:  {"IQ4_NL", block.QK4_NL, block.IQ4_NLBytes},
	TypeIQ3_S:   {"IQ3_S", block.QK_K, block.IQ3_SBytes},
	TypeIQ2_S:   {"IQ2_S", block.QK_K, block.IQ2_SBytes},
	TypeIQ4_XS:  {"IQ4_XS", block.QK_K, block.IQ4_XSBytes},
	TypeI8:      {"I8", 1, 1},
	TypeI16:     {"I16", 1, 2},
	TypeI32:     {"I32", 1, 4},
	TypeI64:     {"I64", 1, 8},
	TypeF64:     {"F64", 1, 8},
	TypeIQ1_M:   {"IQ1_M", block.QK_K, block.IQ1_MBytes},
	TypeBF16:    {"BF16", 1, 2},
	TypeTQ1_0:   {"TQ1_0", block.QK_K, block.TQ1_0Bytes},
	TypeTQ2_0:   {"TQ2_0", block.QK_K, block.TQ2_0Bytes},
	TypeMXFP4:   {"MXFP4", 32, 17},
}

// Known reports whether t is a ggml type id this table describes.
func (t Type) Known() bool { _, ok := table[t]; return ok }

// String returns ggml's name for the type ("Q4_K", "F16", …).
func (t Type) String() string {
	if tr, ok := table[t]; ok {
		return tr.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize is the number of elements in one block (1 for plain types).
func (t Type) BlockSize() int { return table[t].blockSize }

// TypeSize is the number of bytes in one block.
func (t Type) TypeSize() int { return table[t].typeSize }

// Quantized reports whether the type is a block format rather than a plain
// float or integer element type.
func (t Type) Quantized() bool { return table[t].blockSize > 1 }

// BitsPerWeight is the storage cost of one element in bits.
func (t Type) BitsPerWeight() float64 {
	tr := table[t]
	if tr.blockSize == 0 {
		return 0
	}
	return float64(tr.typeSize*8) / float64(tr.blockSize)
}

// RowSize returns the bytes taken by ne0 elements, and false when t is unknown
// or ne0 is not a whole number of blocks.
func (t Type) RowSize(ne0 uint64) (uint64, bool) {
	tr, ok := table[t]
	if !ok || ne0%uint64(tr.blockSize) != 0 {
		return 0, false
	}
	return ne0 / uint64(tr.blockSize) * uint64(tr.typeSize), true
}

// Types lists every known type in id order.
func Types() []Type {
	out := make([]Type, 0, len(table))
	for id := Type(0); id <= TypeMXFP4; id++ {
		if id.Known() {
			out = append(out, id)
		}
	}
	return out
}

// ParseType finds a type by its ggml name, case-insensitively.
func ParseType(name string) (Type, error) {
	for t, tr := range table {
		if strings.EqualFold(tr.name, name) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown ggml type %q", name)
}

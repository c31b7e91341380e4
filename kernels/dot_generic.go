package kernels

import (
	"encoding/binary"
	"math"

	"github.com/llqt/llqt/formats/block"
)

// A dotFunc returns the dot product of n elements of a weight row w and an
// activation row a already converted to the weight type's vec_dot format.
type dotFunc func(w, a []byte, n int) float32

func dotF32Go(w, a []byte, n int) float32 {
	w, a = w[:4*n], a[:4*n]
	var s float32
	for i := 0; i < n; i++ {
		s += math.Float32frombits(binary.LittleEndian.Uint32(w[4*i:])) *
			math.Float32frombits(binary.LittleEndian.Uint32(a[4*i:]))
	}
	return s
}

// dotF16ActGo multiplies F16 weights with float32 activations that were
// already rounded through f16, which gives the products of ggml's f16·f16 dot.
func dotF16ActGo(w, a []byte, n int) float32 {
	w, a = w[:2*n], a[:4*n]
	var s float32
	for i := 0; i < n; i++ {
		s += f16(w[2*i:]) * math.Float32frombits(binary.LittleEndian.Uint32(a[4*i:]))
	}
	return s
}

// dotBF16ActGo is dotF16ActGo for BF16 weights and bf16-rounded activations.
func dotBF16ActGo(w, a []byte, n int) float32 {
	w, a = w[:2*n], a[:4*n]
	var s float32
	for i := 0; i < n; i++ {
		s += block.BF16ToFloat(binary.LittleEndian.Uint16(w[2*i:])) * math.Float32frombits(binary.LittleEndian.Uint32(a[4*i:]))
	}
	return s
}

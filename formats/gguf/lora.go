package gguf

import (
	"fmt"
	"strings"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/internal/mmap"
)

// Adapter is an open GGUF LoRA adapter (general.type = adapter,
// adapter.type = lora), as convert_lora_to_gguf.py writes it.
type Adapter struct {
	File  *File
	Alpha float32
	// Pairs maps a base tensor name (blk.0.attn_q.weight) to its lora_a
	// (ggml shape [in, r]) and lora_b ([r, out]) tensors.
	Pairs map[string]LoraPair
}

// LoraPair is the two factors of one adapted matrix.
type LoraPair struct{ A, B *TensorInfo }

// Rank is r, the inner dimension of B·A.
func (p LoraPair) Rank() int { return int(p.B.Shape[0]) }

// OpenAdapter opens and checks a LoRA adapter.
func OpenAdapter(path string) (*Adapter, error) {
	return mmap.OpenThen(path, Open, func(f *File) (*Adapter, error) {
		a, err := newAdapter(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return a, nil
	})
}

func newAdapter(f *File) (*Adapter, error) {
	if t, _ := f.KV.String("general.type"); t != "adapter" {
		return nil, fmt.Errorf("general.type is %q, want \"adapter\": not a LoRA adapter", t)
	}
	if t, _ := f.KV.String("adapter.type"); t != "lora" {
		return nil, fmt.Errorf("adapter.type is %q, want \"lora\"", t)
	}
	a := &Adapter{File: f, Pairs: map[string]LoraPair{}}
	if v, ok := f.KV.Float("adapter.lora.alpha"); ok {
		a.Alpha = float32(v)
	}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		var base string
		isA := false
		switch {
		case strings.HasSuffix(t.Name, ".lora_a"):
			base, isA = strings.TrimSuffix(t.Name, ".lora_a"), true
		case strings.HasSuffix(t.Name, ".lora_b"):
			base = strings.TrimSuffix(t.Name, ".lora_b")
		default:
			continue // llama.cpp ignores other tensors of an adapter
		}
		p := a.Pairs[base]
		if isA {
			p.A = t
		} else {
			p.B = t
		}
		a.Pairs[base] = p
	}
	for base, p := range a.Pairs {
		if p.A == nil || p.B == nil {
			return nil, fmt.Errorf("tensor %s has only one of lora_a and lora_b", base)
		}
		if len(p.A.Shape) != 2 || len(p.B.Shape) != 2 || p.A.Shape[1] != p.B.Shape[0] {
			return nil, fmt.Errorf("tensor %s: lora_a %v and lora_b %v are not [in, r] and [r, out]", base, p.A.Shape, p.B.Shape)
		}
		for _, t := range []*TensorInfo{p.A, p.B} {
			switch t.Type {
			case ggml.TypeF32, ggml.TypeF16, ggml.TypeBF16:
			default:
				return nil, fmt.Errorf("tensor %s is %s: quantized LoRA adapters are not supported, convert with --outtype f16 or f32", t.Name, t.Type)
			}
		}
	}
	if len(a.Pairs) == 0 {
		return nil, fmt.Errorf("no lora_a/lora_b tensors")
	}
	return a, nil
}

// Close closes the adapter file.
func (a *Adapter) Close() error { return a.File.Close() }

// Scale is the factor llama.cpp applies to B·A for a user scale s:
// s·alpha/r, or s when the adapter has no alpha.
func (a *Adapter) Scale(userScale float32, p LoraPair) float32 {
	if a.Alpha == 0 {
		return userScale
	}
	return userScale * a.Alpha / float32(p.Rank())
}

// Factors returns A (r rows of in values) and B (out rows of r values) as
// float32.
func (a *Adapter) Factors(p LoraPair) (A, B []float32, err error) {
	read := func(t *TensorInfo) ([]float32, error) {
		raw, err := a.File.Data(t)
		if err != nil {
			return nil, err
		}
		return formats.PlainCodec{}.Decode(t.Type, raw, int(t.Elements()))
	}
	if A, err = read(p.A); err != nil {
		return nil, nil, err
	}
	B, err = read(p.B)
	return A, B, err
}

// LoraDelta is a formats.Transform adding scale·B·A to a weight, in
// llama-export-lora's float32 arithmetic: each element of B·A is a
// sequential float32 sum over the rank (ggml's vec_dot_f32 on fewer values
// than one SIMD step, which is what a rank below 16 gives), then scaled,
// then added to the base value.
type LoraDelta struct {
	A, B  []float32 // A: r×in, B: out×r, row-major
	Rank  int
	Scale float32
}

// Name describes the transform.
func (d *LoraDelta) Name() string { return fmt.Sprintf("lora(r=%d, scale=%g)", d.Rank, d.Scale) }

// Apply adds the update to data, a matrix of shape [in, out] (ggml order).
func (d *LoraDelta) Apply(data []float32, shape []uint64) error {
	if len(shape) != 2 {
		return fmt.Errorf("LoRA on a tensor of %d dimensions", len(shape))
	}
	in, out, r := int(shape[0]), int(shape[1]), d.Rank
	if len(d.A) != r*in || len(d.B) != out*r || len(data) != in*out {
		return fmt.Errorf("LoRA factors [%d×%d]·[%d×%d] do not fit a %d×%d weight", out, r, r, in, out, in)
	}
	for j := range out {
		bj := d.B[j*r : (j+1)*r]
		row := data[j*in : (j+1)*in]
		for i := range in {
			// The float32 conversions keep each product and sum rounded
			// on its own, as ggml's code is compiled (no fused multiply-add).
			var s float32
			for k, b := range bj {
				s += float32(d.A[k*in+i] * b)
			}
			row[i] = float32(s*d.Scale) + row[i]
		}
	}
	return nil
}

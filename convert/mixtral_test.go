package convert

import (
	"bytes"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
)

// TestMixtralGolden: experts stacked into ffn_*_exps, router F32, "4x…"
// size label.
func TestMixtralGolden(t *testing.T) { archGolden(t, "mixtral") }

// TestStackSourceParts: materialising a stack part by part gives the same
// bytes as materialising it whole.
func TestStackSourceParts(t *testing.T) {
	var parts []formats.Source
	for e := 0; e < 3; e++ {
		v := make([]float32, 8)
		for i := range v {
			v[i] = float32(e*100 + i)
		}
		parts = append(parts, f32Source(v))
	}
	stack := &stackSource{typ: ggml.TypeF32, parts: parts}
	tensor := &formats.Tensor{Name: "blk.0.ffn_up_exps.weight", Shape: []uint64{4, 2, 3}, Type: ggml.TypeF16, Source: stack}
	whole, err := formats.Materialize(tensor, nil)
	if err != nil {
		t.Fatal(err)
	}
	var byParts []byte
	handled, err := formats.MaterializeParts(tensor, nil, func(b []byte) error {
		byParts = append(byParts, b...)
		return nil
	})
	if err != nil || !handled {
		t.Fatal(handled, err)
	}
	if !bytes.Equal(whole, byParts) || len(whole) != 4*2*3*2 {
		t.Errorf("parts give %d bytes, whole %d; equal %v", len(byParts), len(whole), bytes.Equal(whole, byParts))
	}
}

package gguf

import (
	"strings"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
)

func TestLoraDelta(t *testing.T) {
	// W (2 out × 3 in) + 2·B(2×2)·A(2×3).
	A := []float32{1, 2, 3, 4, 5, 6}
	B := []float32{1, 0, 0.5, -1}
	w := []float32{10, 20, 30, 40, 50, 60}
	d := &LoraDelta{A: A, B: B, Rank: 2, Scale: 2}
	if err := d.Apply(w, []uint64{3, 2}); err != nil {
		t.Fatal(err)
	}
	want := []float32{10 + 2*1, 20 + 2*2, 30 + 2*3, 40 + 2*(0.5-4), 50 + 2*(1-5), 60 + 2*(1.5-6)}
	for i := range w {
		if w[i] != want[i] {
			t.Fatalf("W = %v, want %v", w, want)
		}
	}
	if err := d.Apply(make([]float32, 6), []uint64{2, 3}); err == nil {
		t.Error("mismatched shape accepted")
	}
}

func TestOpenAdapterErrors(t *testing.T) {
	f32 := func(n int) memSource { return memSource{ggml.TypeF32, make([]byte, 4*n)} }
	mk := func(kvs formats.KVs, tensors ...*formats.Tensor) string {
		return writeTemp(t, &formats.Model{Arch: "llama", KV: kvs, Tensors: tensors})
	}
	good := formats.KVs{kv("general.architecture", "llama"), kv("general.type", "adapter"), kv("adapter.type", "lora"), kv("adapter.lora.alpha", float32(16))}
	a := &formats.Tensor{Name: "w.lora_a", Shape: []uint64{4, 2}, Type: ggml.TypeF32, Source: f32(8)}
	b := &formats.Tensor{Name: "w.lora_b", Shape: []uint64{2, 3}, Type: ggml.TypeF32, Source: f32(6)}
	bBad := &formats.Tensor{Name: "w.lora_b", Shape: []uint64{5, 3}, Type: ggml.TypeF32, Source: f32(15)}
	for _, tc := range []struct {
		name string
		path string
		want string
	}{
		{"ok", mk(good, a, b), ""},
		{"not-adapter", mk(formats.KVs{kv("general.type", "model")}, a, b), "not a LoRA adapter"},
		{"half-pair", mk(good, a), "only one of"},
		{"rank-mismatch", mk(good, a, bBad), "are not [in, r]"},
		{"empty", mk(good), "no lora_a"},
	} {
		ad, err := OpenAdapter(tc.path)
		if tc.want == "" {
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			p := ad.Pairs["w"]
			if p.Rank() != 2 || ad.Scale(1, p) != 8 || ad.Scale(0.5, p) != 4 {
				t.Errorf("%s: rank %d, scale %v", tc.name, p.Rank(), ad.Scale(1, p))
			}
			if A, B, err := ad.Factors(p); err != nil || len(A) != 8 || len(B) != 6 {
				t.Errorf("%s: factors %d, %d, %v", tc.name, len(A), len(B), err)
			}
			ad.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

package quant

import (
	"bytes"
	"context"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/gguf"
)

// writeQuantized plans and writes m; whole forces the writer to
// materialise every tensor whole (an OnTensor hook turns streaming off).
func writeQuantized(t *testing.T, m *formats.Model, opts Options, whole bool) ([]byte, error) {
	t.Helper()
	out, _, err := Plan(m, opts)
	if err != nil {
		return nil, err
	}
	wo := gguf.WriteOptions{Threads: opts.Threads}
	if whole {
		wo.OnTensor = func(*formats.Tensor, []byte) {}
	}
	var buf bytes.Buffer
	if err := gguf.Write(context.Background(), &buf, out, wo); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// TestStreamedQuantizeMatchesWhole quantizes by row ranges and whole
// tensors: the same bytes for dense and expert models, with and without
// an importance matrix, and the same error for a NaN.
func TestStreamedQuantizeMatchesWhole(t *testing.T) {
	dense := llamaShape{layers: 2, heads: 4, headsKV: 2, embd: 256, ff: 768, vocab: 1024}
	moe := llamaShape{layers: 1, heads: 4, headsKV: 2, embd: 256, ff: 512, vocab: 64, experts: 4}
	for _, tc := range []struct {
		name    string
		shape   llamaShape
		preset  string
		imatrix bool
	}{
		{"dense Q4_K_M", dense, "Q4_K_M", false},
		{"dense Q4_K_M imatrix", dense, "Q4_K_M", true},
		{"dense Q6_K", dense, "Q6_K", false},
		{"moe Q4_K_M imatrix", moe, "Q4_K_M", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := synthModel(tc.shape)
			opts := Options{Preset: mustPreset(t, tc.preset), Threads: 3}
			if tc.imatrix {
				opts.Imatrix = map[string][]float32{}
				for i, tt := range m.Tensors {
					if len(tt.Shape) < 2 {
						continue
					}
					n := int(tt.Shape[0])
					if len(tt.Shape) > 2 {
						n *= int(tt.Shape[2])
					}
					opts.Imatrix[tt.Name] = testImatrix(uint64(100+i), n)
				}
			}
			want, err := writeQuantized(t, m, opts, true)
			if err != nil {
				t.Fatal(err)
			}
			got, err := writeQuantized(t, m, opts, false)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Error("streamed file differs from the whole-tensor one")
			}
		})
	}
	m := synthModel(dense)
	for _, tt := range m.Tensors {
		if tt.Name == "blk.1.ffn_down.weight" {
			tt.Source.(*synthSource).nan = 768*200 + 5
		}
	}
	opts := Options{Preset: mustPreset(t, "Q4_K_M"), Threads: 2}
	_, errWhole := writeQuantized(t, m, opts, true)
	_, errStream := writeQuantized(t, m, opts, false)
	if errWhole == nil || errStream == nil || errWhole.Error() != errStream.Error() {
		t.Errorf("NaN: streamed error %v, whole %v", errStream, errWhole)
	}
}

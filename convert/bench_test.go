package convert_test

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/llqt/llqt/convert"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/synth"
)

// BenchmarkConvert converts a synthetic BF16 checkpoint (TinyLlama's layer
// widths, 2 layers, 8k vocabulary) and streams the GGUF to io.Discard;
// MB/s is of input weights.
func BenchmarkConvert(b *testing.B) {
	o := synth.TinyLlama11B()
	o.Layers, o.Vocab = 2, 8192
	dir := filepath.Join(b.TempDir(), "bench")
	if err := synth.Write(dir, o); err != nil {
		b.Fatal(err)
	}
	for _, ot := range []string{"bf16", "f16", "f32"} {
		b.Run(ot, func(b *testing.B) {
			b.SetBytes(int64(o.Params() * 2))
			for b.Loop() {
				res, err := convert.Convert(dir, convert.Options{OutType: ot})
				if err != nil {
					b.Fatal(err)
				}
				if err := gguf.Write(context.Background(), io.Discard, res.Model, gguf.WriteOptions{}); err != nil {
					b.Fatal(err)
				}
				res.Close()
			}
		})
	}
}

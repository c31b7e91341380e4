package synth

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/convert"
	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/safetensors"
)

func TestWriteLayout(t *testing.T) {
	for _, shards := range []int{1, 3} {
		o := Tiny()
		o.Shards = shards
		dir := t.TempDir()
		if err := Write(dir, o); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"config.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Error(err)
			}
		}
		c, err := safetensors.OpenDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Files) != shards {
			t.Errorf("%d files, want %d", len(c.Files), shards)
		}
		var n uint64
		for _, x := range c.Tensors {
			n += x.Elements()
		}
		if n != o.Params() || len(c.Tensors) != 3+9*o.Layers {
			t.Errorf("%d params in %d tensors, want %d", n, len(c.Tensors), o.Params())
		}
		c.Close()
	}
}

// TestWeightStatistics: matrices are N(0, 0.02) and norms N(1, 0.02), so a
// forward pass through the model stays in a sane range.
func TestWeightStatistics(t *testing.T) {
	dir := t.TempDir()
	o := Tiny()
	o.DType = safetensors.F32
	if err := Write(dir, o); err != nil {
		t.Fatal(err)
	}
	c, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, x := range c.Tensors {
		raw, _ := x.ReadRaw()
		v, _ := formats.PlainCodec{}.Decode(x.Type(), raw, int(x.Elements()))
		var sum, sq float64
		for _, f := range v {
			sum += float64(f)
		}
		mean := sum / float64(len(v))
		for _, f := range v {
			sq += (float64(f) - mean) * (float64(f) - mean)
		}
		std := math.Sqrt(sq / float64(len(v)))
		wantMean := 0.0
		if strings.HasSuffix(x.Name, "norm.weight") {
			wantMean = 1
		}
		if math.Abs(mean-wantMean) > 0.01 || math.Abs(std-0.02) > 0.005 {
			t.Errorf("%s: mean %.4f std %.4f", x.Name, mean, std)
		}
	}
}

func TestVocabulary(t *testing.T) {
	for _, n := range []int{300, 4096, 32000} {
		m := Vocabulary(n)
		if len(m.Pieces) != n {
			t.Fatalf("%d pieces, want %d", len(m.Pieces), n)
		}
		seen := map[string]bool{}
		for i, p := range m.Pieces {
			if seen[p.Text] {
				t.Fatalf("piece %d %q repeated", i, p.Text)
			}
			seen[p.Text] = true
		}
		if m.Pieces[3].Text != "<0x00>" || m.Pieces[3].Type != convert.PieceByte || m.Pieces[258].Text != "<0xFF>" {
			t.Errorf("byte pieces wrong: %v %v", m.Pieces[3], m.Pieces[258])
		}
	}
}

func TestOptionsRejected(t *testing.T) {
	for name, edit := range map[string]func(*Options){
		"dtype":       func(o *Options) { o.DType = safetensors.I8 },
		"heads":       func(o *Options) { o.Heads = 3 },
		"small vocab": func(o *Options) { o.Vocab = 100 },
	} {
		o := Tiny()
		edit(&o)
		if err := Write(t.TempDir(), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	o := Tiny()
	o.Hidden, o.Intermediate, o.Vocab = 256, 768, 4096
	b.SetBytes(int64(o.Params() * 2))
	for b.Loop() {
		if err := Write(b.TempDir(), o); err != nil {
			b.Fatal(err)
		}
	}
}

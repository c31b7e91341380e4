package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/llqt/llqt/formats/safetensors"
	"github.com/llqt/llqt/internal/synth"
)

// dirSize adds up the regular files in dir.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
	}
	return n
}

// TestPeakRSSIsBoundedByTensorsNotModel converts and quantizes a synthetic
// checkpoint several times larger than what one tensor per worker needs,
// and checks that neither command's resident set grows with the model: the
// streaming writers hold a few tensors at a time, and mapped input pages
// are given back once copied.
func TestPeakRSSIsBoundedByTensorsNotModel(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 320 MB checkpoint; skipped with -short")
	}
	requireCommand(t, "convert")
	requireCommand(t, "quantize")
	dir := t.TempDir()
	hf := filepath.Join(dir, "hf")
	// 24 layers of 512×1536 F32 matrices: 320 MB in all, the largest tensor
	// (the 4096×512 embedding) 8 MiB.
	o := synth.Options{Hidden: 512, Intermediate: 1536, Layers: 24, Heads: 8, KVHeads: 4, Vocab: 4096,
		DType: safetensors.F32, Shards: 2, Seed: 5}
	if err := synth.Write(hf, o); err != nil {
		t.Fatal(err)
	}
	model := dirSize(t, hf)
	const largestTensor = 4096 * 512 * 4
	// Per worker: the raw tensor, its float32 view and the encoded output,
	// plus the Go runtime and buffers.
	bound := int64(2*3*largestTensor + 64<<20)
	if bound >= model/2 {
		t.Fatalf("test model too small to show anything: %d MB vs bound %d MB", model>>20, bound>>20)
	}
	f16 := filepath.Join(dir, "m-f16.gguf")
	r := runWithin(t, 2*time.Minute, llqtBin, "convert", hf, f16, "--outtype", "f16", "-t", "2")
	if r.code != 0 {
		t.Fatalf("convert failed: %v", r)
	}
	t.Logf("convert: checkpoint %d MB, peak RSS %d MB (bound %d MB)", model>>20, r.maxRSS>>20, bound>>20)
	if r.maxRSS > bound {
		t.Errorf("convert peak RSS %d MB exceeds %d MB for a %d MB model", r.maxRSS>>20, bound>>20, model>>20)
	}
	r = runWithin(t, 2*time.Minute, llqtBin, "quantize", f16, filepath.Join(dir, "m-q4km.gguf"), "Q4_K_M", "-t", "2")
	if r.code != 0 {
		t.Fatalf("quantize failed: %v", r)
	}
	t.Logf("quantize: input %d MB, peak RSS %d MB (bound %d MB)", fileSize(t, f16)>>20, r.maxRSS>>20, bound>>20)
	if r.maxRSS > bound {
		t.Errorf("quantize peak RSS %d MB exceeds %d MB", r.maxRSS>>20, bound>>20)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

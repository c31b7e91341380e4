package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/fixtures"
)

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestSplitMergeCommands: llqt split writes llama-gguf-split's kept shards
// byte for byte, and llqt merge gives llama-gguf-split --merge's file.
func TestSplitMergeCommands(t *testing.T) {
	in := fixtures.Path(t, "golden/tiny-llama-Q4_K_M.gguf")
	kept := fixtures.Path(t, "golden2/split/t20")
	var g struct {
		Modes map[string]struct {
			MergedSHA256 string `json:"merged_sha256"`
		} `json:"modes"`
	}
	b, err := os.ReadFile(fixtures.Path(t, "golden2/split.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, _, err := runLLQT(t, "split", "--split-max-tensors", "20", in, filepath.Join(dir, "tiny-llama-Q4_K_M")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		name := gguf.SplitPath("tiny-llama-Q4_K_M", i, 3)
		sameFile(t, filepath.Join(dir, name), filepath.Join(kept, name))
	}
	out := filepath.Join(dir, "merged.gguf")
	if _, _, err := runLLQT(t, "merge", filepath.Join(dir, gguf.SplitPath("tiny-llama-Q4_K_M", 0, 3)), out); err != nil {
		t.Fatal(err)
	}
	if got := sha256File(t, out); got != g.Modes["t20"].MergedSHA256 {
		t.Errorf("merged sha256 %s, llama-gguf-split --merge: %s", got, g.Modes["t20"].MergedSHA256)
	}
	// Merging a shard other than the first, or a plain file, is refused.
	if _, _, err := runLLQT(t, "merge", in, filepath.Join(dir, "x.gguf")); err == nil {
		t.Error("merging a file without split keys succeeded")
	}
}

// TestQuantizeKeepSplit compares quantize --keep-split --override-kv with
// llama-quantize b4748 run the same way on the same shards
// (testdata/keep-split.json), and quantizing the first shard without
// --keep-split with golden/tiny-llama-Q4_K_M.gguf: llama.cpp reads a split
// model from its first shard and drops the split keys.
func TestQuantizeKeepSplit(t *testing.T) {
	f32 := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	golden := fixtures.Path(t, "golden/tiny-llama-Q4_K_M.gguf")
	var ref struct {
		SplitMaxTensors int      `json:"split_max_tensors"`
		Overrides       []string `json:"overrides"`
		Type            string   `json:"type"`
		Outputs         []struct {
			File   string `json:"file"`
			SHA256 string `json:"sha256"`
		} `json:"outputs"`
	}
	b, err := os.ReadFile("testdata/keep-split.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, _, err := runLLQT(t, "split", "--split-max-tensors", strconv.Itoa(ref.SplitMaxTensors), f32, filepath.Join(dir, "f32")); err != nil {
		t.Fatal(err)
	}
	n := len(ref.Outputs)
	first := filepath.Join(dir, gguf.SplitPath("f32", 0, n))
	args := []string{"quantize", "--keep-split", first, filepath.Join(dir, "llqt-"+ref.Type+".gguf"), ref.Type, "-t", "2"}
	for _, o := range ref.Overrides {
		args = append(args, "--override-kv", o)
	}
	if _, _, err := runLLQT(t, args...); err != nil {
		t.Fatal(err)
	}
	for i, o := range ref.Outputs {
		p := filepath.Join(dir, gguf.SplitPath("llqt-"+ref.Type, i, n))
		if got := sha256File(t, p); got != o.SHA256 {
			t.Errorf("%s: sha256 %s, llama-quantize --keep-split wrote %s (%s)", filepath.Base(p), got, o.SHA256, o.File)
		}
	}

	whole := filepath.Join(dir, "whole.gguf")
	if _, _, err := runLLQT(t, "quantize", first, whole, ref.Type, "-t", "2"); err != nil {
		t.Fatal(err)
	}
	sameFile(t, whole, golden)

	// --split-max-size cuts the output as llama-gguf-split would cut the
	// unsplit output.
	if _, _, err := runLLQT(t, "quantize", "--split-max-size", "1M", f32, filepath.Join(dir, "q"), ref.Type, "-t", "2"); err != nil {
		t.Fatal(err)
	}
	var g struct {
		Modes map[string]struct {
			Shards []struct {
				File   string `json:"file"`
				SHA256 string `json:"sha256"`
			} `json:"shards"`
		} `json:"modes"`
	}
	if b, err := os.ReadFile(fixtures.Path(t, "golden2/split.json")); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	shards := g.Modes["1M"].Shards
	for i, s := range shards {
		if got := sha256File(t, filepath.Join(dir, gguf.SplitPath("q", i, len(shards)))); got != s.SHA256 {
			t.Errorf("quantize --split-max-size 1M shard %d: sha256 %s, llama-gguf-split of llama-quantize's file: %s", i+1, got, s.SHA256)
		}
	}
}

// TestConvertSplitMatchesGGUFPy: convert --split-max-tensors 20 and
// --split-max-size 5M write the shards gguf-py's GGUFWriter b4748 writes
// for the same model and limits (testdata/convert-split.json).
func TestConvertSplitMatchesGGUFPy(t *testing.T) {
	hf := fixtures.Path(t, "tiny-llama-hf")
	var ref struct {
		Runs []struct {
			Flags  []string `json:"flags"`
			Shards []struct {
				File   string `json:"file"`
				SHA256 string `json:"sha256"`
			} `json:"shards"`
		} `json:"runs"`
	}
	b, err := os.ReadFile("testdata/convert-split.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	for i, r := range ref.Runs {
		dir := filepath.Join(t.TempDir(), strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"convert", "--outtype", "f32", hf, filepath.Join(dir, "m.gguf"), "-t", "2"}, r.Flags...)
		if _, _, err := runLLQT(t, args...); err != nil {
			t.Fatal(err)
		}
		for _, s := range r.Shards {
			if got := sha256File(t, filepath.Join(dir, s.File)); got != s.SHA256 {
				t.Errorf("%v: %s sha256 %s, gguf-py wrote %s", r.Flags, s.File, got, s.SHA256)
			}
		}
	}
}

// TestConvertSplit: convert --split-max-tensors writes shards as gguf-py's
// writer does (split keys in the order no, count, tensors.count; the
// output's extension replaced by the shard suffix) whose tensors are
// golden/tiny-llama-f32.gguf's.
func TestConvertSplit(t *testing.T) {
	hf := fixtures.Path(t, "tiny-llama-hf")
	golden := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	dir := t.TempDir()
	if _, _, err := runLLQT(t, "convert", "--outtype", "f32", "--split-max-tensors", "20", hf, filepath.Join(dir, "m.gguf"), "-t", "2"); err != nil {
		t.Fatal(err)
	}
	first := filepath.Join(dir, "m-00001-of-00003.gguf")
	sf, err := gguf.OpenModel(first)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	gf, err := gguf.Open(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer gf.Close()
	if len(sf.Tensors) != len(gf.Tensors) {
		t.Fatalf("%d tensors, golden %d", len(sf.Tensors), len(gf.Tensors))
	}
	for i := range gf.Tensors {
		if sf.Tensors[i].Name != gf.Tensors[i].Name {
			t.Fatalf("tensor %d is %s, golden %s", i, sf.Tensors[i].Name, gf.Tensors[i].Name)
		}
		a, _ := gf.Data(&gf.Tensors[i])
		c, err := sf.Data(&sf.Tensors[i])
		if err != nil || string(a) != string(c) {
			t.Fatalf("tensor %s differs from golden (%v)", gf.Tensors[i].Name, err)
		}
	}
	n := len(sf.KV)
	for i, k := range []string{gguf.KeySplitNo, gguf.KeySplitCount, gguf.KeySplitTensorsCount} {
		if sf.KV[n-3+i].Key != k {
			t.Errorf("metadata key %d from the end is %s, gguf-py writes %s", 3-i, sf.KV[n-3+i].Key, k)
		}
	}
	if len(sf.KV)-3 != len(gf.KV) {
		t.Errorf("first shard has %d keys, golden %d plus 3 split keys", len(sf.KV), len(gf.KV))
	}
}

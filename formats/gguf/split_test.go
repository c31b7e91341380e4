package gguf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/internal/fixtures"
)

type splitGolden struct {
	Input string `json:"input"`
	Modes map[string]struct {
		Command      string `json:"command"`
		NShards      int    `json:"n_shards"`
		MergedSHA256 string `json:"merged_sha256"`
		MergedBytes  int64  `json:"merged_bytes"`
		Shards       []struct {
			File     string `json:"file"`
			Bytes    int64  `json:"bytes"`
			SHA256   string `json:"sha256"`
			NTensors int    `json:"n_tensors"`
			First    string `json:"first_tensor"`
			Last     string `json:"last_tensor"`
		} `json:"shards"`
	} `json:"modes"`
}

func fileSHA(t *testing.T, path string) (string, int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), int64(len(b))
}

// TestSplitMergeGolden splits golden/tiny-llama-Q4_K_M.gguf as
// llama-gguf-split b4748 did (golden2/split.json: by 20 tensors and by 1M)
// and compares every shard's sha256 and size with llama-gguf-split's, then
// merges the shards and compares with llama-gguf-split --merge's output.
func TestSplitMergeGolden(t *testing.T) {
	jpath := fixtures.Path(t, "golden2/split.json")
	var g splitGolden
	b, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	in := fixtures.Path(t, g.Input)
	for _, tc := range []struct {
		mode string
		opt  SplitOptions
	}{
		{"t20", SplitOptions{MaxTensors: 20}},
		{"1M", SplitOptions{MaxBytes: 1000 * 1000}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			want, ok := g.Modes[tc.mode]
			if !ok || !strings.Contains(want.Command, "--split") {
				t.Fatalf("split.json has no mode %s", tc.mode)
			}
			f, err := Open(in)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			m := f.Model()
			groups, err := PlanShards(m, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(groups) != want.NShards {
				t.Fatalf("%d shards, llama-gguf-split made %d", len(groups), want.NShards)
			}
			dir := t.TempDir()
			paths := SplitFileNames(filepath.Join(dir, "tiny-llama-Q4_K_M"), len(groups), StyleGGUFSplit)
			if err := WriteShards(context.Background(), paths, ShardModels(m, groups, StyleGGUFSplit), WriteOptions{Threads: 2}); err != nil {
				t.Fatal(err)
			}
			for i, p := range paths {
				ws := want.Shards[i]
				if filepath.Base(p) != ws.File {
					t.Errorf("shard %d named %s, want %s", i, filepath.Base(p), ws.File)
				}
				g := groups[i]
				if len(g) != ws.NTensors || m.Tensors[g[0]].Name != ws.First || m.Tensors[g[len(g)-1]].Name != ws.Last {
					t.Errorf("shard %d: %d tensors %s..%s, want %d %s..%s", i, len(g), m.Tensors[g[0]].Name,
						m.Tensors[g[len(g)-1]].Name, ws.NTensors, ws.First, ws.Last)
				}
				sum, n := fileSHA(t, p)
				if sum != ws.SHA256 || n != ws.Bytes {
					t.Errorf("shard %d: sha256 %s (%d bytes), llama-gguf-split wrote %s (%d bytes)", i, sum, n, ws.SHA256, ws.Bytes)
				}
			}
			// A split model opens from its first shard with every tensor.
			sf, err := OpenModel(paths[0])
			if err != nil {
				t.Fatal(err)
			}
			defer sf.Close()
			if len(sf.Tensors) != len(f.Tensors) || sf.Shards() != len(paths) {
				t.Fatalf("first shard opens with %d tensors in %d files, want %d in %d", len(sf.Tensors), sf.Shards(), len(f.Tensors), len(paths))
			}
			for i := range f.Tensors {
				ti, ok := sf.Tensor(f.Tensors[i].Name)
				if !ok {
					t.Fatalf("tensor %s missing from the split view", f.Tensors[i].Name)
				}
				a, _ := f.Data(&f.Tensors[i])
				c, err := sf.Data(ti)
				if err != nil || !bytes.Equal(a, c) {
					t.Fatalf("tensor %s: bytes differ through the split view (%v)", ti.Name, err)
				}
			}

			mm, mf, err := MergedModel(paths[0])
			if err != nil {
				t.Fatal(err)
			}
			defer mf.Close()
			out := filepath.Join(dir, "merged.gguf")
			if err := WriteFile(context.Background(), out, mm, WriteOptions{Threads: 2}); err != nil {
				t.Fatal(err)
			}
			sum, n := fileSHA(t, out)
			if sum != want.MergedSHA256 || n != want.MergedBytes {
				t.Errorf("merged: sha256 %s (%d bytes), llama-gguf-split --merge wrote %s (%d bytes)", sum, n, want.MergedSHA256, want.MergedBytes)
			}
		})
	}
}

// TestMergeKeptGoldenShards merges the shards llama-gguf-split wrote (kept
// in golden2/split/t20) rather than ours.
func TestMergeKeptGoldenShards(t *testing.T) {
	first := fixtures.Path(t, "golden2/split/t20/tiny-llama-Q4_K_M-00001-of-00003.gguf")
	var g splitGolden
	b, err := os.ReadFile(fixtures.Path(t, "golden2/split.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	mm, mf, err := MergedModel(first)
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	out := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteFile(context.Background(), out, mm, WriteOptions{Threads: 1}); err != nil {
		t.Fatal(err)
	}
	if sum, _ := fileSHA(t, out); sum != g.Modes["t20"].MergedSHA256 {
		t.Errorf("merged sha256 %s, llama-gguf-split --merge: %s", sum, g.Modes["t20"].MergedSHA256)
	}
}

func splitTestModel(n int) *formats.Model {
	m := &formats.Model{Arch: "llama", KV: formats.KVs{kv("general.architecture", "llama"), kv("general.name", "x")}}
	for i := range n {
		data := make([]byte, 4*(i+1))
		for j := range data {
			data[j] = byte(i + j)
		}
		m.Tensors = append(m.Tensors, &formats.Tensor{Name: "t" + string(rune('a'+i)), Shape: []uint64{uint64(i + 1)},
			Type: ggml.TypeF32, Source: memSource{ggml.TypeF32, data}})
	}
	return m
}

func TestPlanShards(t *testing.T) {
	m := splitTestModel(5) // data 4, 8, 12, 16, 20 bytes; padded 32 each
	for _, tc := range []struct {
		name string
		opt  SplitOptions
		want []int // tensors per shard
		err  bool
	}{
		{"none", SplitOptions{}, []int{5}, false},
		{"tensors2", SplitOptions{MaxTensors: 2}, []int{2, 2, 1}, false},
		{"tensors5", SplitOptions{MaxTensors: 5}, []int{5}, false},
		{"first-empty", SplitOptions{MaxTensors: 2, NoTensorFirstSplit: true}, []int{0, 2, 2, 1}, false},
		{"bytes64-padded", SplitOptions{MaxBytes: 64}, []int{2, 2, 1}, false},
		{"bytes-too-small", SplitOptions{MaxBytes: 16}, nil, true},
		{"conv-bytes24-unpadded", SplitOptions{MaxBytes: 24, Style: StyleConverter}, []int{3, 1, 1}, false},
		{"conv-tensors3", SplitOptions{MaxTensors: 3, Style: StyleConverter}, []int{3, 2}, false},
		{"conv-too-small-still-one", SplitOptions{MaxBytes: 1, Style: StyleConverter}, []int{1, 1, 1, 1, 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			groups, err := PlanShards(m, tc.opt)
			if tc.err {
				if err == nil {
					t.Fatalf("want an error, got %v", groups)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, g := range groups {
				got = append(got, len(g))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("shards %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("shards %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestSplitRoundTrip writes a self-made model as shards in both styles,
// opens it from the first shard and merges it back.
func TestSplitRoundTrip(t *testing.T) {
	for _, style := range []SplitStyle{StyleGGUFSplit, StyleConverter} {
		m := splitTestModel(5)
		groups, err := PlanShards(m, SplitOptions{MaxTensors: 2, Style: style})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		paths := SplitFileNames(filepath.Join(dir, "m.gguf"), len(groups), style)
		if err := WriteShards(context.Background(), paths, ShardModels(m, groups, style), WriteOptions{Threads: 1}); err != nil {
			t.Fatal(err)
		}
		f, err := OpenModel(paths[0])
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Tensors) != 5 || f.Shards() != 3 {
			t.Fatalf("style %d: %d tensors in %d shards", style, len(f.Tensors), f.Shards())
		}
		for i, mt := range m.Tensors {
			ti, _ := f.Tensor(mt.Name)
			got, err := f.Data(ti)
			want, _ := mt.Source.ReadRaw()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("style %d: tensor %d differs", style, i)
			}
			if sh, _ := f.ShardOf(mt.Name); sh != i/2 {
				t.Fatalf("style %d: tensor %s in shard %d, want %d", style, mt.Name, sh, i/2)
			}
			raw, err := f.Model().Tensors[i].Source.ReadRaw()
			if err != nil || !bytes.Equal(raw, want) {
				t.Fatalf("style %d: Model source of %s differs", style, mt.Name)
			}
		}
		f.Close()
		// Opening a later shard is refused, as llama.cpp refuses it.
		if _, err := OpenModel(paths[1]); err == nil || !strings.Contains(err.Error(), "first shard") {
			t.Fatalf("opening shard 2: %v", err)
		}
		// A missing shard is an error naming it.
		os.Remove(paths[2])
		if _, err := OpenModel(paths[0]); err == nil || !strings.Contains(err.Error(), "00003-of-00003") {
			t.Fatalf("missing shard: %v", err)
		}
	}
}

func TestSplitNames(t *testing.T) {
	for _, tc := range []struct {
		path      string
		no, count int
		prefix    string
		ok        bool
	}{
		{"a/b-00001-of-00003.gguf", 0, 3, "a/b", true},
		{"a/b-00002-of-00003.gguf", 1, 3, "a/b", true},
		{"a/b-00002-of-00003.gguf", 0, 3, "", false},
		{"-00001-of-00001.gguf", 0, 1, "", false},
		{"x.gguf", 0, 2, "", false},
	} {
		p, ok := SplitPrefix(tc.path, tc.no, tc.count)
		if p != tc.prefix || ok != tc.ok {
			t.Errorf("SplitPrefix(%q, %d, %d) = %q, %v; want %q, %v", tc.path, tc.no, tc.count, p, ok, tc.prefix, tc.ok)
		}
		if ok && SplitPath(p, tc.no, tc.count) != tc.path {
			t.Errorf("SplitPath does not invert SplitPrefix for %q", tc.path)
		}
	}
	if got := SplitFileNames("d/m.gguf", 2, StyleConverter)[1]; got != "d/m-00002-of-00002.gguf" {
		t.Errorf("converter shard name %q", got)
	}
	if got := SplitFileNames("d.x/m", 2, StyleGGUFSplit)[0]; got != "d.x/m-00001-of-00002.gguf" {
		t.Errorf("gguf-split shard name %q", got)
	}
}

func TestParseSplitSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  bool
	}{
		{"2G", 2e9, false}, {"500M", 5e8, false}, {"1K", 1000, false}, {"1234", 1234, false},
		{"0M", 0, true}, {"-1G", 0, true}, {"G", 0, true}, {"", 0, true}, {"1.5G", 0, true}, {"99999999999999G", 0, true},
	} {
		got, err := ParseSplitSize(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseSplitSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func FuzzParseSplitSize(f *testing.F) {
	for _, s := range []string{"2G", "1M", "7K", "12", "", "x", "18446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSplitSize(s)
		if err == nil && n == 0 {
			t.Fatalf("%q accepted as 0 bytes", s)
		}
	})
}

func FuzzSplitPrefix(f *testing.F) {
	f.Add("m-00001-of-00002.gguf", 0, 2)
	f.Add("x", 3, 4)
	f.Fuzz(func(t *testing.T, path string, no, count int) {
		if no < 0 || count < 0 || no > 1e6 || count > 1e6 {
			return
		}
		if p, ok := SplitPrefix(path, no, count); ok && SplitPath(p, no, count) != path {
			t.Fatalf("SplitPath(SplitPrefix(%q)) = %q", path, SplitPath(p, no, count))
		}
	})
}

package gguf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
)

// fuzzSeeds are small files the writer produced, plus the hostile cases;
// testdata/fuzz/FuzzParse holds more, kept in the repository so `go test`
// replays them without -fuzz.
func fuzzSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var seeds [][]byte
	for _, m := range []*formats.Model{
		sampleModel(),
		{Arch: "llama"},
		{Arch: "llama", KV: formats.KVs{kv("general.alignment", uint32(64)), kv("general.architecture", "llama")},
			Tensors: []*formats.Tensor{
				{Name: "z", Shape: []uint64{0, 3}, Type: ggml.TypeF32, Source: memSource{ggml.TypeF32, nil}},
				{Name: "q", Shape: []uint64{32, 1}, Type: ggml.TypeQ8_0, Source: memSource{ggml.TypeQ8_0, make([]byte, 34)}},
			}},
	} {
		var buf bytes.Buffer
		if err := Write(context.Background(), &buf, m, WriteOptions{Threads: 1}); err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, buf.Bytes())
	}
	for _, tc := range hostileCases() {
		seeds = append(seeds, tc.data)
	}
	return seeds
}

// FuzzParse feeds arbitrary bytes to Parse. A rejected file must give an
// error wrapping ErrFormat; an accepted one must keep every tensor inside the
// file, yield its exact bytes through Data and Model sources, and survive a
// rewrite: writing what was read and reading that back gives the same bytes
// again.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(bytes.NewReader(data), int64(len(data)), "fuzz.gguf")
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error does not wrap ErrFormat: %v", err)
			}
			return
		}
		checkParsed(t, file, data)
	})
}

func checkParsed(t *testing.T, file *File, data []byte) {
	t.Helper()
	if file.Alignment == 0 || file.Alignment&(file.Alignment-1) != 0 {
		t.Fatalf("accepted alignment %d", file.Alignment)
	}
	for i := range file.Tensors {
		ti := &file.Tensors[i]
		want, err := (&formats.Tensor{Name: ti.Name, Shape: ti.Shape, Type: ti.Type}).Size()
		if err != nil || want != ti.Size {
			t.Fatalf("tensor %s: size %d, type×shape gives %d (%v)", ti.Name, ti.Size, want, err)
		}
		end := file.DataOffset + int64(ti.Offset) + int64(ti.Size)
		if ti.Size > 0 && (end > int64(len(data)) || end < file.DataOffset) {
			t.Fatalf("tensor %s ends at %d, past the %d-byte file", ti.Name, end, len(data))
		}
		b, err := file.Data(ti)
		if err != nil {
			t.Fatalf("Data(%s): %v", ti.Name, err)
		}
		if uint64(len(b)) != ti.Size {
			t.Fatalf("Data(%s) gave %d bytes, want %d", ti.Name, len(b), ti.Size)
		}
	}
	m := file.Model()
	for i, mt := range m.Tensors {
		b, err := mt.Source.ReadRaw()
		if err != nil {
			t.Fatalf("ReadRaw(%s): %v", mt.Name, err)
		}
		if uint64(len(b)) != file.Tensors[i].Size {
			t.Fatalf("ReadRaw(%s) gave %d bytes, want %d", mt.Name, len(b), file.Tensors[i].Size)
		}
	}
	// The writer pads like llama.cpp: a 40-byte file declaring
	// general.alignment 2^31 is valid and rewrites to 2 GiB of padding, so
	// the rewrite check is limited to alignments a test can afford.
	if file.Alignment > 1<<12 {
		return
	}
	var once bytes.Buffer
	if err := Write(context.Background(), &once, m, WriteOptions{Threads: 2}); err != nil {
		t.Fatalf("rewriting an accepted file: %v", err)
	}
	again, err := Parse(bytes.NewReader(once.Bytes()), int64(once.Len()), "rewrite.gguf")
	if err != nil {
		t.Fatalf("reading the rewrite: %v", err)
	}
	if len(again.Tensors) != len(file.Tensors) || len(again.KV) != len(file.KV) {
		t.Fatalf("rewrite has %d tensors and %d KVs, want %d and %d",
			len(again.Tensors), len(again.KV), len(file.Tensors), len(file.KV))
	}
	var twice bytes.Buffer
	if err := Write(context.Background(), &twice, again.Model(), WriteOptions{Threads: 1}); err != nil {
		t.Fatalf("rewriting the rewrite: %v", err)
	}
	if !bytes.Equal(once.Bytes(), twice.Bytes()) {
		t.Fatalf("rewrite is not stable: %d then %d bytes", once.Len(), twice.Len())
	}
}

// TestZeroSizedTensorsRewrite: a tensor with a zero dimension is valid GGUF
// (llama.cpp accepts it) and must pass through read and rewrite.
func TestZeroSizedTensorsRewrite(t *testing.T) {
	for _, shape := range [][]uint64{{0}, {0, 3}, {4, 0}, {0, 1 << 62}} {
		data := header(1, 0).tensor("z", ggml.TypeF32, 0, shape...).pad(32, 0).Bytes()
		file, err := Parse(bytes.NewReader(data), int64(len(data)), "zero.gguf")
		if err != nil {
			t.Fatalf("shape %v: %v", shape, err)
		}
		checkParsed(t, file, data)
	}
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzParse from fuzzSeeds when
// LLQT_WRITE_FUZZ_SEEDS=1; otherwise it only checks the corpus is present.
func TestWriteFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if os.Getenv("LLQT_WRITE_FUZZ_SEEDS") != "1" {
		if entries, err := os.ReadDir(dir); err != nil || len(entries) == 0 {
			t.Errorf("seed corpus %s missing (%v); run with LLQT_WRITE_FUZZ_SEEDS=1", dir, err)
		}
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzCheck: Check finds no problem exactly when Parse accepts the file, and
// otherwise its first problem is Parse's error; every problem wraps
// ErrFormat.
func FuzzCheck(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		problems := Check(bytes.NewReader(data), int64(len(data)), "fuzz.gguf")
		_, err := Parse(bytes.NewReader(data), int64(len(data)), "fuzz.gguf")
		if (err == nil) != (len(problems) == 0) {
			t.Fatalf("Parse error %v, Check problems %v", err, problems)
		}
		if err != nil && problems[0].Error() != err.Error() {
			t.Fatalf("Check's first problem %q differs from Parse's error %q", problems[0], err)
		}
		for _, p := range problems {
			if !errors.Is(p, ErrFormat) {
				t.Fatalf("problem does not wrap ErrFormat: %v", p)
			}
		}
		if !errors.Is(problems.Err(), ErrFormat) && len(problems) > 0 {
			t.Fatalf("list does not wrap ErrFormat: %v", problems)
		}
	})
}

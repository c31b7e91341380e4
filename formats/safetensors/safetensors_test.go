package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/internal/fixtures"
)

func sample() []WriteTensor {
	return []WriteTensor{
		{Name: "b.weight", DType: F32, Shape: []uint64{2, 2}, Data: bytes.Repeat([]byte{1, 0, 0, 0}, 4)},
		{Name: "a.weight", DType: BF16, Shape: []uint64{3}, Data: []byte{1, 2, 3, 4, 5, 6}},
		{Name: "flags", DType: BOOL, Shape: []uint64{2}, Data: []byte{0, 1}},
		{Name: "scalar", DType: I64, Shape: []uint64{}, Data: make([]byte, 8)},
		{Name: "empty", DType: F16, Shape: []uint64{0, 4}, Data: nil},
	}
}

func encode(t *testing.T, ts []WriteTensor, meta map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, ts, meta); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	ts := sample()
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := WriteFile(path, ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata = %v", f.Metadata)
	}
	if (f.DataOffset-8)%8 != 0 {
		t.Errorf("header of %d bytes is not padded to 8", f.DataOffset-8)
	}
	// Data-offset order is the write order here (the empty tensor sits at
	// the end with zero length, sorting after the scalar by end offset).
	if len(f.Tensors) != len(ts) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(ts))
	}
	for _, w := range ts {
		ti, ok := f.Tensor(w.Name)
		if !ok {
			t.Fatalf("tensor %s missing", w.Name)
		}
		got, err := f.Data(ti)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, w.Data) || ti.DType != w.DType || len(ti.Shape) != len(w.Shape) {
			t.Errorf("%s: got %s%v %x, want %s%v %x", w.Name, ti.DType, ti.Shape, got, w.DType, w.Shape, w.Data)
		}
	}
	tt := &Tensor{TensorInfo: f.Tensors[0], File: f}
	if tt.Name != "b.weight" || tt.Type() != ggml.TypeF32 {
		t.Errorf("first tensor %s type %v", tt.Name, tt.Type())
	}
	if _, err := (&Tensor{TensorInfo: *mustTensor(t, f, "flags"), File: f}).Source(); err == nil {
		t.Error("BOOL tensor accepted as a ggml source")
	}
}

func mustTensor(t *testing.T, f *File, name string) *TensorInfo {
	ti, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	return ti
}

// withHeader builds a file from a literal header and data size.
func withHeader(hdr string, data int) []byte {
	out := make([]byte, 8, 8+len(hdr)+data)
	binary.LittleEndian.PutUint64(out, uint64(len(hdr)))
	out = append(out, hdr...)
	return append(out, make([]byte, data)...)
}

func TestMalformed(t *testing.T) {
	huge := make([]byte, 16)
	binary.LittleEndian.PutUint64(huge, MaxHeaderSize+1)
	lying := make([]byte, 16)
	binary.LittleEndian.PutUint64(lying, 9)
	cases := []struct {
		name, want string
		file       []byte
	}{
		{"short", "too short", []byte{1, 2, 3}},
		{"header too big", "limit", huge},
		{"header past end", "only 8 follow", lying},
		{"not json", "not a JSON object", withHeader("[1,2]", 0)},
		{"bad json", "invalid JSON", withHeader(`{"a":`, 0)},
		{"trailing", "trailing data", withHeader(`{}x`, 0)},
		{"unknown dtype", `unknown dtype "Q4"`, withHeader(`{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}`, 1)},
		{"missing dtype", "missing dtype", withHeader(`{"a":{"shape":[1],"data_offsets":[0,1]}}`, 1)},
		{"missing shape", "missing shape", withHeader(`{"a":{"dtype":"U8","data_offsets":[0,1]}}`, 1)},
		{"negative shape", "not a non-negative integer", withHeader(`{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}`, 1)},
		{"float shape", "not a non-negative integer", withHeader(`{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}`, 1)},
		{"overflow", "overflows", withHeader(`{"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,1]}}`, 1)},
		{"size mismatch", "needs 8 bytes", withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4)},
		{"offsets count", "2 entries", withHeader(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}}`, 1)},
		{"reversed", "end before", withHeader(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[2,1]}}`, 2)},
		{"truncated", "truncated", withHeader(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, 8)},
		{"overlap", "overlap", withHeader(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`, 3)},
		{"hole", "hole", withHeader(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}`, 3)},
		{"unowned tail", "cover 1 bytes", withHeader(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 5)},
		{"bad metadata", "__metadata__", withHeader(`{"__metadata__":{"a":1}}`, 0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(bytes.NewReader(c.file), int64(len(c.file)), "x.safetensors")
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "x.safetensors") {
				t.Errorf("error %q: want ErrFormat mentioning %q and the file", err, c.want)
			}
		})
	}
}

// writeSharded writes ts across two shards with an index.
func writeSharded(t *testing.T, dir string, ts []WriteTensor) map[string]string {
	t.Helper()
	wm := map[string]string{}
	half := len(ts) / 2
	for i, part := range [][]WriteTensor{ts[:half], ts[half:]} {
		name := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[i]
		if err := WriteFile(filepath.Join(dir, name), part, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
		for _, w := range part {
			wm[w.Name] = name
		}
	}
	writeIndex(t, dir, wm)
	return wm
}

func writeIndex(t *testing.T, dir string, wm map[string]string) {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 1}, "weight_map": wm})
	if err := os.WriteFile(filepath.Join(dir, IndexName), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOpenDirSharded(t *testing.T) {
	dir := t.TempDir()
	ts := sample()
	writeSharded(t, dir, ts)
	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var names []string
	for _, x := range c.Tensors {
		names = append(names, x.Name)
	}
	want := "b.weight a.weight flags scalar empty"
	if strings.Join(names, " ") != want {
		t.Errorf("order %v, want %s", names, want)
	}
	x, ok := c.Tensor("flags")
	if !ok {
		t.Fatal("flags missing")
	}
	if b, _ := x.ReadRaw(); !bytes.Equal(b, []byte{0, 1}) {
		t.Errorf("flags = %v", b)
	}
}

func TestOpenDirErrors(t *testing.T) {
	t.Run("missing shard", func(t *testing.T) {
		dir := t.TempDir()
		writeSharded(t, dir, sample())
		os.Remove(filepath.Join(dir, "model-00002-of-00002.safetensors"))
		_, err := OpenDir(dir)
		if err == nil || !strings.Contains(err.Error(), "missing shard model-00002-of-00002.safetensors") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("tensor missing from shard", func(t *testing.T) {
		dir := t.TempDir()
		wm := writeSharded(t, dir, sample())
		wm["ghost.weight"] = "model-00001-of-00002.safetensors"
		writeIndex(t, dir, wm)
		_, err := OpenDir(dir)
		if err == nil || !strings.Contains(err.Error(), "ghost.weight") || !strings.Contains(err.Error(), "model-00001-of-00002.safetensors") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("tensor not in index", func(t *testing.T) {
		dir := t.TempDir()
		wm := writeSharded(t, dir, sample())
		delete(wm, "flags")
		writeIndex(t, dir, wm)
		_, err := OpenDir(dir)
		if err == nil || !strings.Contains(err.Error(), "flags is not listed") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("wrong shard", func(t *testing.T) {
		dir := t.TempDir()
		wm := writeSharded(t, dir, sample())
		wm["flags"] = "model-00001-of-00002.safetensors"
		writeIndex(t, dir, wm)
		_, err := OpenDir(dir)
		if err == nil || !strings.Contains(err.Error(), "puts it in") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("bad index", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, IndexName), []byte("{"), 0o644)
		_, err := OpenDir(dir)
		if !errors.Is(err, ErrFormat) {
			t.Errorf("error %v", err)
		}
	})
	t.Run("no files", func(t *testing.T) {
		_, err := OpenDir(t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "no model*.safetensors") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("truncated shard", func(t *testing.T) {
		dir := t.TempDir()
		writeSharded(t, dir, sample())
		p := filepath.Join(dir, "model-00001-of-00002.safetensors")
		st, _ := os.Stat(p)
		os.Truncate(p, st.Size()-3)
		_, err := OpenDir(dir)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), p) {
			t.Errorf("error %v", err)
		}
	})
}

func TestTinyLlama(t *testing.T) {
	dir := fixtures.Path(t, "tiny-llama-hf")
	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Tensors) != 57 || len(c.Files) != 2 {
		t.Fatalf("%d tensors in %d files", len(c.Tensors), len(c.Files))
	}
	if c.Tensors[0].Name != "model.embed_tokens.weight" || c.Tensors[56].Name != "lm_head.weight" {
		t.Errorf("order: first %s, last %s", c.Tensors[0].Name, c.Tensors[56].Name)
	}
	var total uint64
	for _, x := range c.Tensors {
		total += x.Size()
		if x.DType != BF16 {
			t.Errorf("%s: %s", x.Name, x.DType)
		}
	}
	if total != 13638144 {
		t.Errorf("total %d bytes", total)
	}
}

func FuzzParseHeader(f *testing.F) {
	var buf bytes.Buffer
	Write(&buf, sample(), map[string]string{"format": "pt"})
	f.Add(buf.Bytes())
	f.Add(withHeader(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`, 3))
	f.Add(withHeader(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(bytes.NewReader(data), int64(len(data)), "fuzz")
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error does not wrap ErrFormat: %v", err)
			}
			return
		}
		for i := range file.Tensors {
			ti := &file.Tensors[i]
			b, err := file.Data(ti)
			if err != nil || uint64(len(b)) != ti.Elements()*uint64(ti.DType.Size()) {
				t.Fatalf("tensor %s: %d bytes, err %v", ti.Name, len(b), err)
			}
		}
	})
}

func BenchmarkReadRaw(b *testing.B) {
	data := make([]byte, 4<<20)
	path := filepath.Join(b.TempDir(), "model.safetensors")
	if err := WriteFile(path, []WriteTensor{{Name: "w", DType: BF16, Shape: []uint64{1024, 2048}, Data: data}}, nil); err != nil {
		b.Fatal(err)
	}
	c, err := OpenFile(path)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := c.Tensors[0].ReadRaw(); err != nil {
			b.Fatal(err)
		}
	}
}

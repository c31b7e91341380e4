package gguf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/internal/fixtures"
)

type memSource struct {
	t    ggml.Type
	data []byte
}

func (s memSource) Type() ggml.Type          { return s.t }
func (s memSource) ReadRaw() ([]byte, error) { return append([]byte(nil), s.data...), nil }

func f32Bytes(v ...float32) []byte {
	out, _ := formats.PlainCodec{}.Encode(ggml.TypeF32, v, len(v))
	return out
}

func kv(k string, v any) formats.KV { return formats.KV{Key: k, Value: v} }

func sampleModel() *formats.Model {
	return &formats.Model{
		Arch: "llama",
		KV: formats.KVs{
			kv("general.architecture", "llama"),
			kv("u8", uint8(7)), kv("i8", int8(-7)), kv("u16", uint16(700)), kv("i16", int16(-700)),
			kv("u32", uint32(70000)), kv("i32", int32(-70000)), kv("f32", float32(1.5)), kv("b", true),
			kv("u64", uint64(1<<40)), kv("i64", int64(-1<<40)), kv("f64", 2.25),
			kv("strs", formats.Array{Elem: formats.ValString, Values: []string{"a", "", "ccc"}}),
			kv("f32s", formats.Array{Elem: formats.ValFloat32, Values: []float32{1, -2}}),
			kv("nested", formats.Array{Elem: formats.ValArray, Values: []formats.Array{
				{Elem: formats.ValInt32, Values: []int32{1, 2}},
				{Elem: formats.ValBool, Values: []bool{true, false}},
			}}),
		},
		Tensors: []*formats.Tensor{
			{Name: "a", Shape: []uint64{3}, Type: ggml.TypeF32, Source: memSource{ggml.TypeF32, f32Bytes(1, 2, 3)}},
			{Name: "b", Shape: []uint64{2, 2}, Type: ggml.TypeF16, Source: memSource{ggml.TypeF32, f32Bytes(1, 0.5, -2, 65504)}},
		},
	}
}

func writeTemp(t *testing.T, m *formats.Model) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteFile(context.Background(), path, m, WriteOptions{Threads: 2}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRoundTrip(t *testing.T) {
	m := sampleModel()
	path := writeTemp(t, m)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !reflect.DeepEqual(f.KV, m.KV) {
		t.Errorf("KV mismatch:\n got %#v\nwant %#v", f.KV, m.KV)
	}
	if len(f.Tensors) != 2 || f.Tensors[1].Type != ggml.TypeF16 || f.Tensors[1].Offset%32 != 0 {
		t.Fatalf("tensors: %+v", f.Tensors)
	}
	b, err := f.Data(&f.Tensors[1])
	if err != nil {
		t.Fatal(err)
	}
	got, _ := formats.PlainCodec{}.Decode(ggml.TypeF16, b, 4)
	if !reflect.DeepEqual(got, []float32{1, 0.5, -2, 65504}) {
		t.Errorf("f16 data = %v", got)
	}
	if f.Size%32 != 0 {
		t.Errorf("file size %d not padded to alignment", f.Size)
	}
}

// The golden file written by llama.cpp's converter must survive a
// read-and-rewrite unchanged, byte for byte.
func TestRewriteGoldenIsIdentical(t *testing.T) {
	for _, name := range []string{"golden/tiny-llama-f32.gguf", "golden/tiny-llama-q8_0.gguf", "golden/tiny-llama-Q4_K_M.gguf"} {
		src := fixtures.Path(t, name)
		f, err := Open(src)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := Write(context.Background(), &buf, f.Model(), WriteOptions{Threads: 3}); err != nil {
			t.Fatal(err)
		}
		f.Close()
		want, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s: rewrite differs (%d vs %d bytes, sha %x vs %x)", name, buf.Len(), len(want),
				sha256.Sum256(buf.Bytes()), sha256.Sum256(want))
		}
	}
}

type failingWriter struct{ left int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, errors.New("no space left on device")
	}
	w.left -= len(p)
	return len(p), nil
}

func TestWriteErrorsPropagate(t *testing.T) {
	for _, limit := range []int{0, 10, 100, 400} {
		err := Write(context.Background(), &failingWriter{left: limit}, sampleModel(), WriteOptions{})
		if err == nil {
			t.Errorf("limit %d: no error", limit)
		}
	}
}

func TestWriteFileLeavesNothingOnError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.gguf")
	m := sampleModel()
	m.Tensors[0].Source = memSource{ggml.TypeF32, f32Bytes(1, 2)} // lies about its size
	if err := WriteFile(context.Background(), path, m, WriteOptions{}); err == nil {
		t.Fatal("no error for a short source")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("left files behind: %v", entries)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WriteFile(ctx, path, sampleModel(), WriteOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled write: %v", err)
	}
	entries, _ = os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("left files behind after cancel: %v", entries)
	}
	if err := WriteFile(context.Background(), path, sampleModel(), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(context.Background(), path, sampleModel(), WriteOptions{}); err == nil {
		t.Error("overwrote an existing file without Overwrite")
	}
}

func TestTruncationNeverPanics(t *testing.T) {
	data, err := os.ReadFile(writeTemp(t, sampleModel()))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(data); n++ {
		_, err := Parse(bytes.NewReader(data[:n]), int64(n), "trunc.gguf")
		if err == nil {
			// Cutting only trailing padding/data must still fail the range check,
			// except at the exact end of the last tensor's data.
			continue
		}
		if !errors.Is(err, ErrFormat) {
			t.Fatalf("cut at %d: error does not wrap ErrFormat: %v", n, err)
		}
	}
	_ = io.EOF
}

package gguf

import (
	"bytes"
	"context"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
)

func TestFileSizeMatchesWrite(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tensors [][]float32
	}{
		{"no tensors", nil},
		{"one", [][]float32{{1, 2, 3}}},
		{"padded", [][]float32{{1}, make([]float32, 40), {5, 6}}},
	} {
		m := &formats.Model{}
		m.KV.Set("general.architecture", "llama")
		m.KV.Set("general.name", tc.name)
		for i, v := range tc.tensors {
			m.Tensors = append(m.Tensors, &formats.Tensor{Name: string(rune('a' + i)), Shape: []uint64{uint64(len(v))},
				Type: ggml.TypeF32, Source: formats.F32Source(v)})
		}
		want, err := FileSize(m)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := Write(context.Background(), &buf, m, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if uint64(buf.Len()) != want {
			t.Errorf("%s: FileSize %d, Write wrote %d bytes", tc.name, want, buf.Len())
		}
	}
}

package gguf

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats"
)

func TestEditMetadata(t *testing.T) {
	for _, tc := range []struct {
		name     string
		edit     func(kv *formats.KVs) error
		inPlace  bool
		wantErr  string
		checkKey string
		want     any
	}{
		{"same-length", func(kv *formats.KVs) error { kv.Set("general.name", "y"); return nil }, true, "", "general.name", "y"},
		{"grow-a-little", func(kv *formats.KVs) error { kv.Set("general.name", "xyz"); return nil }, true, "", "general.name", "xyz"},
		{"grow-past-padding", func(kv *formats.KVs) error { kv.Set("general.name", strings.Repeat("n", 100)); return nil }, false, "", "general.name", strings.Repeat("n", 100)},
		{"new-key", func(kv *formats.KVs) error {
			kv.Set("tokenizer.chat_template", strings.Repeat("{{x}}", 50))
			return nil
		}, false, "", "tokenizer.chat_template", strings.Repeat("{{x}}", 50)},
		{"delete", func(kv *formats.KVs) error { kv.Delete("general.name"); return nil }, false, "", "general.architecture", "llama"},
		{"alignment", func(kv *formats.KVs) error { kv.Set("general.alignment", uint32(64)); return nil }, false, "", "general.alignment", uint32(64)},
		{"bad-alignment", func(kv *formats.KVs) error { kv.Set("general.alignment", uint32(3)); return nil }, false, "power of two", "", nil},
		{"edit-error", func(kv *formats.KVs) error { return errors.New("refused") }, false, "refused", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := splitTestModel(3)
			path := writeTemp(t, m)
			before, _ := os.ReadFile(path)
			f0, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			oldData := append([]byte(nil), before[f0.DataOffset:]...)
			f0.Close()

			res, err := EditMetadata(context.Background(), path, tc.edit)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
					t.Fatal("a failed edit changed the file")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.InPlace != tc.inPlace {
				t.Fatalf("in place %v, want %v (%+v)", res.InPlace, tc.inPlace, res)
			}
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if v, _ := f.KV.Get(tc.checkKey); v != tc.want {
				t.Errorf("%s = %v, want %v", tc.checkKey, v, tc.want)
			}
			if f.DataOffset != res.NewDataOffset {
				t.Errorf("data at %d, result says %d", f.DataOffset, res.NewDataOffset)
			}
			after, _ := os.ReadFile(path)
			if res.InPlace && !bytes.Equal(after[f.DataOffset:], oldData) {
				t.Error("an in-place edit touched the tensor data")
			}
			for i, mt := range m.Tensors {
				want, _ := mt.Source.ReadRaw()
				got, err := f.Data(&f.Tensors[i])
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("tensor %s changed (%v)", mt.Name, err)
				}
			}
			// Writing the edited model afresh gives the same bytes: an
			// in-place edit leaves exactly what a rewrite would.
			var buf bytes.Buffer
			if err := Write(context.Background(), &buf, f.Model(), WriteOptions{Threads: 1}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), after) {
				t.Error("edited file differs from a fresh write of the same model")
			}
		})
	}
}

// BenchmarkEditMetadataInPlace times a same-length value change, which is
// written in place: one header write and an fsync, whatever the data size.
func BenchmarkEditMetadataInPlace(b *testing.B) {
	m := splitTestModel(4)
	m.KV = append(m.KV, kv("tokenizer.chat_template", strings.Repeat("a", 800)))
	dir := b.TempDir()
	path := dir + "/m.gguf"
	if err := WriteFile(context.Background(), path, m, WriteOptions{Threads: 1}); err != nil {
		b.Fatal(err)
	}
	tpl := []string{strings.Repeat("b", 800), strings.Repeat("c", 800)}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		res, err := EditMetadata(context.Background(), path, func(kvs *formats.KVs) error {
			kvs.Set("tokenizer.chat_template", tpl[i%2])
			return nil
		})
		if err != nil || !res.InPlace {
			b.Fatalf("%+v, %v", res, err)
		}
	}
}

package safetensors

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzIndex feeds arbitrary model.safetensors.index.json contents next to
// two valid one-tensor shards: OpenDir must either open the shards the index
// names, with readable tensors, or fail with an error; never panic or hang.
func FuzzIndex(f *testing.F) {
	f.Add([]byte(`{"metadata":{"total_size":16},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{"a":"model-00001-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{"a":"../etc/passwd","b":"model-00002-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{}}`))
	f.Add([]byte(`{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors"}}`))
	f.Add([]byte(`{`))
	dir := f.TempDir()
	for _, s := range []struct{ file, name string }{
		{"model-00001-of-00002.safetensors", "a"},
		{"model-00002-of-00002.safetensors", "b"},
	} {
		err := WriteFile(filepath.Join(dir, s.file), []WriteTensor{{Name: s.name, DType: F32, Shape: []uint64{2}, Data: make([]byte, 8)}}, nil)
		if err != nil {
			f.Fatal(err)
		}
	}
	index := filepath.Join(dir, IndexName)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(index, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := OpenDir(dir)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrFormat) {
				return
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		defer c.Close()
		// Only shards the index names are opened, and each holds one tensor.
		if len(c.Tensors) == 0 || len(c.Tensors) > 2 || len(c.Tensors) != len(c.Files) {
			t.Fatalf("opened %d tensors from %d shards", len(c.Tensors), len(c.Files))
		}
		for _, tn := range c.Tensors {
			if _, err := tn.ReadRaw(); err != nil {
				t.Fatalf("tensor %s: %v", tn.Name, err)
			}
		}
	})
}

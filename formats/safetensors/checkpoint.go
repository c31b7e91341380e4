package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// IndexName is the file that maps tensor names to shards in a sharded
// checkpoint.
const IndexName = "model.safetensors.index.json"

// Checkpoint is a set of safetensors files holding one model's tensors.
type Checkpoint struct {
	Dir string
	// Files in name order (model-00001-of-…, model-00002-of-…).
	Files []*File
	// Tensors in a stable order: by file, then by data offset inside it.
	Tensors []*Tensor
	// Metadata is the index's "metadata" object (nil without an index).
	IndexMetadata map[string]any

	byName map[string]*Tensor
}

// OpenDir opens the checkpoint in dir. With model.safetensors.index.json
// the shards are the files its weight_map names; every one must exist and
// the tensors they hold must be exactly the ones the index lists, each in
// the file the index says. Without an index, every model*.safetensors file
// in dir is a part (the rule convert_hf_to_gguf.py uses).
func OpenDir(dir string) (*Checkpoint, error) {
	c := &Checkpoint{Dir: dir, byName: map[string]*Tensor{}}
	indexPath := filepath.Join(dir, IndexName)
	var weightMap map[string]string
	var parts []string
	if raw, err := os.ReadFile(indexPath); err == nil {
		var idx struct {
			Metadata  map[string]any    `json:"metadata"`
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(raw, &idx); err != nil {
			return nil, fmt.Errorf("%s: %w: invalid JSON: %v", indexPath, ErrFormat, err)
		}
		if len(idx.WeightMap) == 0 {
			return nil, fmt.Errorf("%s: %w: no weight_map", indexPath, ErrFormat)
		}
		c.IndexMetadata = idx.Metadata
		weightMap = idx.WeightMap
		seen := map[string]bool{}
		for tensor, file := range weightMap {
			if file == "" || filepath.Base(file) != file {
				return nil, fmt.Errorf("%s: %w: tensor %s maps to %q, which is not a file name in the checkpoint directory", indexPath, ErrFormat, tensor, file)
			}
			if !seen[file] {
				seen[file] = true
				parts = append(parts, file)
			}
		}
		sort.Strings(parts)
		for _, p := range parts {
			if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
				return nil, fmt.Errorf("%s: missing shard %s listed in %s: %w", dir, p, IndexName, err)
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	} else {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			n := e.Name()
			if strings.HasPrefix(n, "model") && strings.HasSuffix(n, ".safetensors") && !e.IsDir() {
				parts = append(parts, n)
			}
		}
		sort.Strings(parts)
		if len(parts) == 0 {
			return nil, fmt.Errorf("%s: no model*.safetensors files and no %s", dir, IndexName)
		}
	}
	for _, p := range parts {
		path := filepath.Join(dir, p)
		f, err := Open(path)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Files = append(c.Files, f)
		for i := range f.Tensors {
			t := &Tensor{TensorInfo: f.Tensors[i], File: f}
			if prev, dup := c.byName[t.Name]; dup {
				c.Close()
				return nil, fmt.Errorf("%s: %w: tensor %s also in %s", path, ErrFormat, t.Name, prev.File.Path)
			}
			if weightMap != nil {
				want, listed := weightMap[t.Name]
				if !listed {
					c.Close()
					return nil, fmt.Errorf("%s: tensor %s is not listed in %s", path, t.Name, indexPath)
				}
				if want != p {
					c.Close()
					return nil, fmt.Errorf("%s: tensor %s is here but %s puts it in %s", path, t.Name, indexPath, want)
				}
			}
			c.byName[t.Name] = t
			c.Tensors = append(c.Tensors, t)
		}
	}
	if weightMap != nil {
		var missing []string
		for name := range weightMap {
			if _, ok := c.byName[name]; !ok {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			c.Close()
			more := ""
			if len(missing) > 5 {
				more = fmt.Sprintf(" and %d more", len(missing)-5)
				missing = missing[:5]
			}
			return nil, fmt.Errorf("%s: tensor %s%s listed in %s missing from shard %s", dir, strings.Join(missing, ", "), more, IndexName, weightMap[missing[0]])
		}
	}
	return c, nil
}

// OpenFile opens a single safetensors file as a checkpoint.
func OpenFile(path string) (*Checkpoint, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{Dir: filepath.Dir(path), Files: []*File{f}, byName: map[string]*Tensor{}}
	for i := range f.Tensors {
		t := &Tensor{TensorInfo: f.Tensors[i], File: f}
		c.byName[t.Name] = t
		c.Tensors = append(c.Tensors, t)
	}
	return c, nil
}

// Tensor finds a tensor by name.
func (c *Checkpoint) Tensor(name string) (*Tensor, bool) {
	t, ok := c.byName[name]
	return t, ok
}

// Close closes every file.
func (c *Checkpoint) Close() error {
	var first error
	for _, f := range c.Files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// NewCheckpoint gathers already open files (of any container whose tensors
// are byte ranges, such as PyTorch's zip checkpoints) into a checkpoint, in
// the given order. A tensor name in two files is an error.
func NewCheckpoint(dir string, files []*File) (*Checkpoint, error) {
	c := &Checkpoint{Dir: dir, Files: files, byName: map[string]*Tensor{}}
	for _, f := range files {
		for i := range f.Tensors {
			t := &Tensor{TensorInfo: f.Tensors[i], File: f}
			if prev, dup := c.byName[t.Name]; dup {
				return nil, fmt.Errorf("%s: %w: tensor %s also in %s", f.Path, ErrFormat, t.Name, prev.File.Path)
			}
			c.byName[t.Name] = t
			c.Tensors = append(c.Tensors, t)
		}
	}
	return c, nil
}

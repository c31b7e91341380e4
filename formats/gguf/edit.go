package gguf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/llqt/llqt/formats"
)

// EditResult says how a metadata edit reached the file.
type EditResult struct {
	// InPlace is true when only the header bytes were overwritten; false
	// when the file was rewritten (tensors copied, not decoded).
	InPlace bool
	// OldHeader and NewHeader are the header sizes before padding;
	// DataOffset is where the tensor data started before the edit and
	// NewDataOffset where it starts now.
	OldHeader, NewHeader      int64
	DataOffset, NewDataOffset int64
	// Unchanged is true when the edit changed nothing and nothing was written.
	Unchanged bool
}

// EditMetadata applies edit to the metadata of the GGUF file at path. When
// the new header still ends inside the padding before the tensor data (so
// the data offset, and every tensor's offset, stays the same), only the
// header is overwritten, in one write followed by fsync. Otherwise the file
// is rewritten atomically: a temporary file beside it, tensors copied byte
// for byte, renamed over the original when complete. Tensor infos and data
// are never changed.
func EditMetadata(ctx context.Context, path string, edit func(kv *formats.KVs) error) (EditResult, error) {
	var res EditResult
	f, err := Open(path)
	if err != nil {
		return res, err
	}
	defer f.Close()
	kv := slices.Clone(f.KV)
	if err := edit(&kv); err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	m := f.Model()
	m.KV = kv
	oldHeader, err := rawHeader(f, f.KV)
	if err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	newHeader, err := rawHeader(f, kv)
	if err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	res.OldHeader, res.NewHeader = int64(len(oldHeader)), int64(len(newHeader))
	res.DataOffset = f.DataOffset
	newAlign := uint64(DefaultAlignment)
	if v, ok := kv.Get("general.alignment"); ok {
		a, isU32 := v.(uint32)
		if !isU32 || a == 0 || a&(a-1) != 0 {
			return res, fmt.Errorf("%s: general.alignment must be a non-zero power of two uint32, got %v", path, v)
		}
		newAlign = uint64(a)
	}
	if f.Version == 3 && bytes.Equal(oldHeader, newHeader) {
		res.Unchanged, res.InPlace, res.NewDataOffset = true, true, f.DataOffset
		return res, nil
	}
	fits := newAlign == f.Alignment && int64(alignUp(uint64(len(newHeader)), newAlign)) == f.DataOffset
	if fits {
		// The padding between header and data must be zeros again.
		buf := make([]byte, f.DataOffset)
		copy(buf, newHeader)
		if err := f.Close(); err != nil {
			return res, err
		}
		if err := overwriteHeader(path, buf); err != nil {
			return res, err
		}
		res.InPlace, res.NewDataOffset = true, f.DataOffset
		return res, nil
	}
	if err := WriteFile(ctx, path, m, WriteOptions{Threads: 1, Overwrite: true}); err != nil {
		return res, err
	}
	res.NewDataOffset = int64(alignUp(uint64(len(newHeader)), newAlign))
	return res, nil
}

// rawHeader encodes f's header with the given metadata and f's own tensor
// infos and offsets, without the padding.
func rawHeader(f *File, kv formats.KVs) ([]byte, error) {
	m := &formats.Model{KV: kv}
	l := &Layout{}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		m.Tensors = append(m.Tensors, &formats.Tensor{Name: t.Name, Shape: t.Shape, Type: t.Type})
		l.Offsets = append(l.Offsets, t.Offset)
	}
	var buf bytes.Buffer
	if err := writeHeader(&buf, m, l); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func overwriteHeader(path string, header []byte) error {
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	// One write of the whole region, then a sync: the tensor data after it
	// is never touched.
	if _, err := w.WriteAt(header, 0); err != nil {
		w.Close()
		return fmt.Errorf("%s: writing header in place: %w", path, err)
	}
	if err := w.Sync(); err != nil {
		w.Close()
		return fmt.Errorf("%s: syncing: %w", path, err)
	}
	return w.Close()
}

// ErrNoKey is returned for a metadata key that the file does not have.
var ErrNoKey = errors.New("no such metadata key")

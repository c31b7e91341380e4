package mmap

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// File is an open, read-only model file: mapped where the platform allows,
// read through ReadAt otherwise.
type File struct {
	Path string
	Size int64
	// Data is the whole file when mapped, nil otherwise.
	Data []byte
	// ReaderAt reads the file (from the mapping when there is one).
	ReaderAt io.ReaderAt

	fh    *os.File
	unmap func()
}

// Open opens path for reading and maps it. Only regular files are accepted:
// the check comes before opening, because opening a FIFO blocks until a
// writer appears, and again on the opened file.
func Open(path string) (*File, error) {
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		fh.Close()
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	f := &File{Path: path, Size: st.Size(), ReaderAt: fh, fh: fh}
	if data, unmap, err := Map(fh, f.Size); err == nil && data != nil {
		f.Data, f.unmap, f.ReaderAt = data, unmap, bytes.NewReader(data)
	}
	return f, nil
}

// Close unmaps and closes the file; slices of Data must not be used after.
func (f *File) Close() error {
	if f.unmap != nil {
		f.unmap()
		f.unmap = nil
	}
	f.Data = nil
	return f.fh.Close()
}

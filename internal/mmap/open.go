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

// ReadAtFile reads from the file itself (pread), not through the mapping:
// a streaming pass that copies the data out anyway then adds no mapped
// pages to the process's resident set and takes no page faults.
func (f *File) ReadAtFile(p []byte, off int64) (int, error) {
	if f == nil || f.fh == nil {
		return 0, os.ErrClosed
	}
	return f.fh.ReadAt(p, off)
}

// Close unmaps and closes the file; slices of Data must not be used after.
// Closing a nil or already closed File does nothing.
func (f *File) Close() error {
	if f == nil || f.fh == nil {
		return nil
	}
	if f.unmap != nil {
		f.unmap()
		f.unmap = nil
	}
	f.Data = nil
	fh := f.fh
	f.fh = nil
	return fh.Close()
}

// OpenParsed opens path (see Open) and parses it with parse. On success
// attach hands the parsed value the open file (its mapping, and what to
// close); on a parse error the file is closed again.
func OpenParsed[T any](path string, parse func(r io.ReaderAt, size int64, name string) (T, error), attach func(T, *File)) (T, error) {
	return OpenWith(path, func(f *File) (T, error) {
		v, err := parse(f.ReaderAt, f.Size, path)
		if err == nil {
			attach(v, f)
		}
		return v, err
	})
}

// OpenWith opens path (see Open) and hands the open file to use, which
// keeps it on success; when use fails the file is closed again.
func OpenWith[T any](path string, use func(*File) (T, error)) (T, error) {
	return OpenThen(path, Open, use)
}

// OpenThen opens path with open and hands the result to use, which keeps it
// on success; when use fails it is closed again. The functions that open a
// file and build something owning it (a model, an adapter) go through it,
// so none of them leaks the file on an error.
func OpenThen[F io.Closer, T any](path string, open func(string) (F, error), use func(F) (T, error)) (T, error) {
	var zero T
	f, err := open(path)
	if err != nil {
		return zero, err
	}
	v, err := use(f)
	if err != nil {
		f.Close()
		return zero, err
	}
	return v, nil
}

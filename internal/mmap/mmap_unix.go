//go:build unix

// Package mmap maps model files read-only, so readers reach tensor data
// without loading it, and lets a streaming pass give pages back once it has
// copied them out. golang.org/x/sys/unix is the maintained syscall wrapper.
package mmap

import (
	"os"

	"golang.org/x/sys/unix"
)

// Map maps the whole of f (size bytes) read-only. It returns nil and no
// error where the file cannot be mapped on this platform (empty, or too big
// for the address space), so callers fall back to ReadAt.
func Map(f *os.File, size int64) ([]byte, func(), error) {
	if size == 0 || size != int64(int(size)) {
		return nil, nil, nil
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return b, func() { _ = unix.Munmap(b) }, nil
}

// Release tells the kernel this process is done with the whole pages of
// mapped[off:off+n], so a pass over a model larger than memory does not keep
// every page in the resident set. The data stays in the page cache; touching
// it again faults it back in.
func Release(mapped []byte, off, n int64) {
	page := int64(os.Getpagesize())
	lo := (off + page - 1) / page * page
	hi := (off + n) / page * page
	if hi > lo && hi <= int64(len(mapped)) {
		_ = unix.Madvise(mapped[lo:hi], unix.MADV_DONTNEED)
	}
}

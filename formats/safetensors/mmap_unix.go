//go:build unix

package safetensors

import (
	"os"

	"golang.org/x/sys/unix"
)

// mmapFile maps the whole file read-only; on failure the caller falls back
// to ReadAt.
func mmapFile(f *os.File, size int64) ([]byte, func(), error) {
	if size == 0 || size != int64(int(size)) {
		return nil, nil, nil
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return b, func() { _ = unix.Munmap(b) }, nil
}

// releasePages tells the kernel we are done with the whole pages of
// mapped[off:off+n] (mapped is a page-aligned read-only file mapping), so a
// pass over a checkpoint larger than memory does not keep every page in this
// process's resident set. The data stays in the page cache; touching it
// again just faults it back in.
func releasePages(mapped []byte, off, n int64) {
	page := int64(os.Getpagesize())
	lo := (off + page - 1) / page * page
	hi := (off + n) / page * page
	if hi > lo {
		_ = unix.Madvise(mapped[lo:hi], unix.MADV_DONTNEED)
	}
}

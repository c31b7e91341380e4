// Package atomicfile writes an output file so that it appears whole or not at
// all: data goes to a temporary file in the destination directory, which is
// synced and renamed over the destination only on Commit. An interrupted or
// failed run leaves no file at the destination, only (after SIGKILL) a
// clearly named temporary file beside it.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// File is a pending output file.
type File struct {
	*os.File
	dest      string
	overwrite bool
	done      bool

	written, flushed int64 // bytes written by Write; bytes handed to writeback
}

// writebackChunk is how much written data File lets build up before asking
// the kernel to start writing it out. Commit must fsync; without this the
// whole file sits dirty in the page cache until then and the fsync writes
// all of it while the caller waits (a 2.2 GB convert spent about a third of
// its time there). Started early, the disk writes while the caller is still
// producing data.
const writebackChunk = 32 << 20

// Write writes p at the file's offset (outputs are written in order) and
// starts writeback of each whole chunk behind it.
func (f *File) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.written += int64(n)
	if f.written-f.flushed >= writebackChunk {
		startWriteback(f.File, f.flushed, f.written-f.flushed)
		f.flushed = f.written
	}
	return n, err
}

var (
	liveMu sync.Mutex
	live   = map[*File]bool{}
)

// Create starts writing dest. Unless overwrite is set, an existing dest is an
// error, checked both now and at Commit.
func Create(dest string, overwrite bool) (*File, error) {
	if !overwrite {
		if _, err := os.Lstat(dest); err == nil {
			return nil, fmt.Errorf("%s: output exists (use --force to overwrite)", dest)
		}
	}
	dir, base := filepath.Split(dest)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".llqt-tmp-*")
	if err != nil {
		return nil, fmt.Errorf("%s: creating temporary output: %w", dest, err)
	}
	// CreateTemp makes the file 0600; outputs are ordinary files that other
	// users and tools may read, as os.Create would make them (0666 less the
	// umask, which Chmod does not apply, so use the common 0644).
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("%s: %w", dest, err)
	}
	f := &File{File: tmp, dest: dest, overwrite: overwrite}
	liveMu.Lock()
	live[f] = true
	liveMu.Unlock()
	return f, nil
}

// Commit syncs the temporary file and renames it to the destination.
func (f *File) Commit() error {
	if f.done {
		return errors.New("atomicfile: already finished")
	}
	if err := f.File.Sync(); err != nil {
		f.Abort()
		return fmt.Errorf("%s: syncing output: %w", f.dest, err)
	}
	if err := f.File.Close(); err != nil {
		f.Abort()
		return fmt.Errorf("%s: closing output: %w", f.dest, err)
	}
	if !f.overwrite {
		if _, err := os.Lstat(f.dest); err == nil {
			f.Abort()
			return fmt.Errorf("%s: output appeared while writing (use --force to overwrite)", f.dest)
		}
	}
	if err := os.Rename(f.File.Name(), f.dest); err != nil {
		f.Abort()
		return fmt.Errorf("%s: renaming output into place: %w", f.dest, err)
	}
	f.finish()
	return nil
}

// Abort discards the temporary file. It is safe to call after Commit.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.File.Close()
	os.Remove(f.File.Name())
	f.finish()
}

func (f *File) finish() {
	f.done = true
	liveMu.Lock()
	delete(live, f)
	liveMu.Unlock()
}

// AbortAll discards every pending output; signal handlers call it before
// exiting so that an interrupted run leaves nothing behind.
func AbortAll() {
	liveMu.Lock()
	pending := make([]*File, 0, len(live))
	for f := range live {
		pending = append(pending, f)
	}
	liveMu.Unlock()
	for _, f := range pending {
		f.Abort()
	}
}

// WriteFile writes data to dest atomically.
func WriteFile(dest string, data []byte, overwrite bool) error {
	f, err := Create(dest, overwrite)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return fmt.Errorf("%s: %w", dest, err)
	}
	return f.Commit()
}

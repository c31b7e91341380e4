//go:build !unix

// Package mmap maps model files read-only; on this platform it never maps,
// and readers fall back to ReadAt.
package mmap

import "os"

// Map never maps here.
func Map(f *os.File, size int64) ([]byte, func(), error) { return nil, nil, nil }

// Release does nothing here.
func Release(mapped []byte, off, n int64) {}

//go:build !unix

package safetensors

import "os"

func mmapFile(f *os.File, size int64) ([]byte, func(), error) { return nil, nil, nil }

func releasePages(mapped []byte, off, n int64) {}

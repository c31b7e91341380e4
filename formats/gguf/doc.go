// Package gguf reads and writes GGUF files (versions 2 and 3, little-endian),
// the model format of llama.cpp.
//
// The reader checks every count, length, dimension, offset and size against
// the file before using it, so a lying header yields an error wrapping
// ErrFormat that names the file, the field and the byte offset, never a panic
// or an allocation larger than the file. Tensor data is reached through mmap
// (or io.ReaderAt) and never loaded whole.
//
// The writer streams: header, metadata and tensor infos first, then each
// tensor's data in order, aligned, into a temporary file in the destination
// directory that is renamed over the output only when everything succeeded.
package gguf

import "github.com/llqt/llqt/formats/ggml"

// Type is the ggml tensor type id; the table lives in package ggml.
type Type = ggml.Type

const (
	// Magic is "GGUF" read as a little-endian uint32.
	Magic = 0x46554747
	// DefaultAlignment is used when general.alignment is absent.
	DefaultAlignment = 32
	// MaxDims is ggml's GGML_MAX_DIMS.
	MaxDims = 4
	// maxNameLen is ggml's GGML_MAX_NAME: llama.cpp rejects a tensor name
	// of this many bytes or more.
	maxNameLen = 64
	// maxArrayDepth bounds nested arrays; real files nest at most once.
	maxArrayDepth = 8
)

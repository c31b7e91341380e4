// Package safetensors reads Hugging Face safetensors checkpoints: single
// files and sharded directories described by model.safetensors.index.json.
//
// A file is an 8-byte little-endian header length, a JSON header mapping
// tensor names to {dtype, shape, data_offsets} (plus an optional
// "__metadata__" object of strings), then the raw row-major little-endian
// tensor bytes. The parser bounds the header size, checks every dtype, shape
// and byte range against the file (sizes agree, ranges in bounds, no overlap,
// no holes) before anything is read, and reports problems as errors wrapping
// ErrFormat that name the file, the field and the byte offset. Tensor data is
// reached through mmap where available (io.ReaderAt otherwise) and is never
// loaded whole; each tensor can serve as a formats.Source.
package safetensors

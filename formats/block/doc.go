// Package block holds ggml's block formats, one file per family: the
// layout constants and tables, and the number conversions the formats are
// built from. A block format stores a run of elements (a block) as small
// integers with one or more scales; its layout is the same bytes that
// llama.cpp b4748 reads and writes.
//
// The package imports only the standard library, so that every layer that
// touches block bytes can share it: formats/ggml (the type table), quant
// (the encoders), kernels (the dot products) and the assembly generator in
// kernels/_asm.
package block

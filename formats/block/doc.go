// Package block holds ggml's block formats, one file per family
// (legacy.go, kquants.go, iq4.go; float.go for F16 and BF16): each
// format's layout constants and tables, its row encoder (with and without
// importance weights), its decoder, and the number helpers the formats are
// built from (search.go holds the scale searches the encoders share). A
// block format stores a run of elements (a block) as small integers with
// one or more scales; the bytes are the ones llama.cpp b4748 reads and
// writes, bit for bit.
//
// A new format is one more file here (layout, encoder, decoder), a row in
// formats/ggml's type table and quant's codec table, and its dot kernels in
// package kernels.
//
// The package imports only the standard library, so that every layer that
// touches block bytes can share it: formats/ggml (the type table), quant
// (the encoders), kernels (the dot products) and the assembly generator in
// kernels/_asm.
package block

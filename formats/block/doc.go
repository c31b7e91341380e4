// Package block holds ggml's block formats, one file per family
// (legacy.go, kquants.go, iq4.go, iq3.go, iq2.go, iq1.go, ternary.go; float.go
// for F16 and BF16; iqgrid.go holds the grid lookup the 2-bit and 1-bit
// i-quants share): each
// format's layout constants and tables, its row encoder (with and without
// importance weights), its decoder and its reference dot product against
// its activation format, and the number helpers the formats are built from
// (search.go holds the scale searches the encoders share). A
// block format stores a run of elements (a block) as small integers with
// one or more scales; the bytes are the ones llama.cpp b4748 reads and
// writes, bit for bit.
//
// The encoders reproduce llama-quantize byte for byte: the same search
// heuristics, and float32 arithmetic kept in float32 in the order the C code
// evaluates it. Products that C rounds before an addition are wrapped in an
// explicit float32 conversion so that the Go compiler cannot fuse them into
// one multiply-add on targets with FMA.
//
// A new format is one more file here (layout, encoder, decoder, reference
// dot), a row in formats/ggml's type table and quant's codec table, and its
// assembly kernels with a row in package kernels' dispatch table.
//
// The package imports only the standard library, so that every layer that
// touches block bytes can share it: formats/ggml (the type table), quant
// (the codec table), kernels (the dispatch table) and the assembly
// generator in kernels/_asm.
package block

// The i-quant grid tables are data taken from llama.cpp b4748's sources;
// LLAMA_CPP names a checkout of it.
//
//go:generate sh -c "test -n \"$LLAMA_CPP\" || { echo 'set LLAMA_CPP to a llama.cpp b4748 checkout' >&2; exit 1; }; go run ./internal/gengrids -common \"$LLAMA_CPP/ggml/src/ggml-common.h\" -quants \"$LLAMA_CPP/ggml/src/ggml-quants.c\" -dir ."

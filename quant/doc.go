// Package quant implements ggml's block formats, type mixes and importance
// matrix handling.
//
// The block formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K … Q6_K, IQ4_NL,
// IQ4_XS and the activation formats Q8_K and Q8_1) are encoded byte for byte
// as llama.cpp b4748's llama-quantize does: the same block layouts
// (ggml-common.h), the same search heuristics, and float32 arithmetic kept in
// float32 in the order the C code evaluates it. Products that C rounds before
// an addition are wrapped in an explicit float32 conversion so that the Go
// compiler cannot fuse them into one multiply-add on targets with FMA.
//
// With an importance matrix (ReadImatrix loads llama-imatrix files) the
// importance-weighted encoders of ggml run instead, again byte for byte.
//
// Rows are independent: QuantizeRows encodes any run of whole rows into a
// caller-provided buffer, so a caller may split a tensor into chunks of rows
// and encode them concurrently; the bytes do not depend on the chunking.
package quant

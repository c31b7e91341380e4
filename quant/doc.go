// Package quant quantizes models as llama.cpp b4748's llama-quantize does:
// the presets (Q4_K_M, …) and their per-tensor type mix, the plan for a
// whole model, importance matrix files, and the codec table that maps each
// ggml type to its encoder and decoder in formats/block (where the block
// formats themselves live, byte for byte).
//
// With an importance matrix (ReadImatrix loads llama-imatrix files) the
// importance-weighted encoders of ggml run instead, again byte for byte.
//
// Rows are independent: QuantizeRows encodes any run of whole rows into a
// caller-provided buffer, so a caller may split a tensor into chunks of rows
// and encode them concurrently; the bytes do not depend on the chunking.
package quant

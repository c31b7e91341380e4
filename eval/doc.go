// Package eval is llqt's inference engine: it loads a GGUF model of one of
// the supported architectures (arch.go: one file per architecture) through
// mmap (weights are used in place, never copied or
// dequantized whole), runs the transformer forward pass on the CPU with a
// KV cache, and samples tokens from the logits.
//
// The numerics follow llama.cpp's CPU backend where it matters for matching
// its outputs: matrix products go through package kernels, which quantizes
// activations to the weight's dot-product type as ggml does; the KV cache is
// F16 by default, so queries and attention weights are rounded to F16 before
// their products with it; RMSNorm and the softmax denominator accumulate in
// float64; RoPE uses ggml's "normal" mode (adjacent pairs) for llama files
// and NEOX mode (halves) for the others, with its frequency, linear, YaRN
// and per-dimension (rope_freqs, LongRoPE) scaling; GELU goes through ggml's
// half-precision table.
//
// Work is spread over Options.Threads: the matrix products by the kernels'
// own workers, attention (softmax and the weighted sum of values, per token
// and head) by a pool each Context starts once, so that a decode step starts
// no goroutines and the engine allocates nothing per token. The KV cache is
// head-major, so each KV group's Q·Kᵀ is one kernels.MatMul.
//
// A Model is safe for concurrent use by several Contexts; a Context (one
// sequence and its KV cache) is not safe for concurrent use.
package eval

package eval_test

import "testing"

// Gemma 2: soft-capping, sliding window on even layers, post norms.
//
// Its Q4_K_M perplexity gets 0.25% rather than 0.1%: 26 random layers with
// activations quantized to 8 bits before every product turn last-bit
// differences of arithmetic order into different roundings, and this model
// amplifies them (mean KLD 0.74 between its f32 and Q4_K_M; switching the
// engine's KV cache from F16 to F32 moves this PPL by 2%). The f32 model is
// within 0.1% and its mean KLD against llama.cpp's f32 is 4e-6.
func TestArchGemma2(t *testing.T) { archGoldens(t, "gemma2", 2.5e-3) }

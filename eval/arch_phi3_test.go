package eval_test

import "testing"

// Phi-3: fused qkv and gate_up, sliding window 96 (inside the 128-token
// perplexity chunks), a vocabulary padded beyond the tokenizer's pieces.
func TestArchPhi3(t *testing.T) { archGoldens(t, "phi3", false) }

// Phi-3 LongRoPE: long factors at n_ctx 128 (perplexity, KLD) and short ones
// at 32 (generation), cos/sin scaled by attn_factor.
func TestArchPhi3LongRoPE(t *testing.T) { archGoldens(t, "phi3-longrope", false) }

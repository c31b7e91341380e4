package eval_test

import "testing"

// Llama 3: rope_freqs divisors on the adjacent-pair RoPE.
func TestArchLlama3(t *testing.T) { archGoldens(t, "llama3", false) }

// Mixtral: GGUF arch llama with four experts, two used per token.
func TestArchMixtral(t *testing.T) { archGoldens(t, "mixtral", false) }

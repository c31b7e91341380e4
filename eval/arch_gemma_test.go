package eval_test

import "testing"

// Gemma: MQA, n_head·head_dim ≠ n_embd, GELU, √n_embd embedding scale, and
// an eot_token_id that ends generation.
func TestArchGemma(t *testing.T) { archGoldens(t, "gemma", false) }

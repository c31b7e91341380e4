package eval_test

import "testing"

// Qwen3 against the PyTorch reference: q/k norms, head_dim·n_head ≠ n_embd.
func TestArchQwen3(t *testing.T) { archReference(t, "qwen3") }

// Qwen3 with tied embeddings (no output.weight).
func TestArchQwen3Tied(t *testing.T) { archReference(t, "qwen3-tied") }

package eval_test

import "testing"

// Qwen2: q/k/v biases, NEOX RoPE, untied output.
func TestArchQwen2(t *testing.T) { archGoldens(t, "qwen2", false) }

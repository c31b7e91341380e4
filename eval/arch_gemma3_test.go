package eval_test

import "testing"

// Gemma 3 against the PyTorch reference: local/global layers with their
// own windows and RoPE, q/k norms, linear RoPE scaling on global layers.
func TestArchGemma3(t *testing.T) { archReference(t, "gemma3") }

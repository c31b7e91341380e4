package convert

import "testing"

// TestQwen3Converts: q/k norms, head_dim keys, untied and tied.
func TestQwen3Converts(t *testing.T) {
	archNewer(t, "qwen3")
	archNewer(t, "qwen3-tied")
}

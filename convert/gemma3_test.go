package convert

import "testing"

// TestGemma3Converts: Gemma 2's norms plus q/k norms (+1 each), the local
// and global rope bases, linear scaling and the sliding window.
func TestGemma3Converts(t *testing.T) { archNewer(t, "gemma3") }

package convert

import "testing"

// TestGemma3Converts: Gemma 2's norms plus q/k norms (+1 each), the local
// and global rope bases, linear scaling and the sliding window.
func TestGemma3Converts(t *testing.T) { archNewer(t, "gemma3") }

// TestPrefixSource: Gemma 3's embedding keeps only the tokenizer's rows.
func TestPrefixSource(t *testing.T) {
	src := f32Source([]float32{1, 2, 3, 4, 5, 6}) // 3 rows of 2
	p := &prefixSource{src: src, n: 2 * 2 * 4}
	raw, err := p.ReadRaw()
	if err != nil || len(raw) != 16 {
		t.Fatalf("%d bytes, %v", len(raw), err)
	}
	if _, err := (&prefixSource{src: src, n: 100}).ReadRaw(); err == nil {
		t.Error("a prefix longer than the source was accepted")
	}
}

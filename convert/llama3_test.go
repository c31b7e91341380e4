package convert

import "testing"

// TestLlama3Golden: rope_scaling "llama3" becomes the rope_freqs tensor.
func TestLlama3Golden(t *testing.T) { archGolden(t, "llama3") }

func TestLlama3RopeFactors(t *testing.T) {
	// arch/README.md: 1, 1, 1, 1, 2.69453, 8, 8, 8 for head_dim 16,
	// theta 5e5, factor 8, low 1, high 4, original 8192.
	got, err := llama3RopeFactors(5e5, 16, 8, 1, 4, 8192)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 1, 1, 1, 2.69453, 8, 8, 8}
	for i := range want {
		if d := got[i] - want[i]; d > 1e-5 || d < -1e-5 {
			t.Errorf("factor %d = %v, want %v", i, got[i], want[i])
		}
	}
}

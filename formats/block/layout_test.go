package block

import "testing"

// TestBlockBytes pins the sizes to ggml-common.h's static_asserts.
func TestBlockBytes(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"Q4_0", Q4_0Bytes, 18}, {"Q4_1", Q4_1Bytes, 20}, {"Q5_0", Q5_0Bytes, 22}, {"Q5_1", Q5_1Bytes, 24},
		{"Q8_0", Q8_0Bytes, 34}, {"Q8_1", Q8_1Bytes, 36},
		{"Q2_K", Q2_KBytes, 84}, {"Q3_K", Q3_KBytes, 110}, {"Q4_K", Q4_KBytes, 144}, {"Q5_K", Q5_KBytes, 176},
		{"Q6_K", Q6_KBytes, 210}, {"Q8_K", Q8_KBytes, 292},
		{"IQ4_NL", IQ4_NLBytes, 18}, {"IQ4_XS", IQ4_XSBytes, 136},
		{"IQ3_XXS", IQ3_XXSBytes, 98}, {"IQ3_S", IQ3_SBytes, 110},
		{"TQ1_0", TQ1_0Bytes, 54}, {"TQ2_0", TQ2_0Bytes, 66}, {"IQ1_S", IQ1_SBytes, 50}, {"IQ1_M", IQ1_MBytes, 56},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.name, c.got, c.want)
		}
	}
}

package block

import (
	"math"
	"testing"

	"github.com/x448/float16"
)

// TestHalfMatchesFloat16 checks the table and the rounding against
// x448/float16 (which the quantizer used before) for every half and for a
// sweep of float32 bit patterns.
func TestHalfMatchesFloat16(t *testing.T) {
	for h := range 1 << 16 {
		got, want := HalfToFloat(uint16(h)), float16.Frombits(uint16(h)).Float32()
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("half %#04x: got %#08x want %#08x", h, math.Float32bits(got), math.Float32bits(want))
		}
	}
	for u := uint64(0); u < 1<<32; u += 4093 {
		f := math.Float32frombits(uint32(u))
		if got, want := FloatToHalf(f), uint16(float16.Fromfloat32(f)); got != want {
			t.Fatalf("float %#08x: got %#04x want %#04x", u, got, want)
		}
	}
}

func TestNearestIntRoundsHalfToEven(t *testing.T) {
	cases := map[float32]int32{0: 0, 0.5: 0, 1.5: 2, 2.5: 2, -0.5: 0, -1.5: -2, -2.5: -2, 0.49999997: 0,
		3.7: 4, -3.7: -4, 4194303: 4194303, -4194303: -4194303, 65534.5: 65534, 3.49: 3}
	for in, want := range cases {
		if got := NearestInt(in); got != want {
			t.Errorf("NearestInt(%v) = %d, want %d", in, got, want)
		}
	}
	// NaN and infinities give 0 after truncation to 16 bits, as the
	// perplexity base-file writer relies on.
	for _, f := range []float32{float32(math.NaN()), float32(math.Inf(1))} {
		if got := uint16(NearestInt(f)); got != 0 {
			t.Errorf("uint16(NearestInt(%g)) = %d, want 0", f, got)
		}
	}
}

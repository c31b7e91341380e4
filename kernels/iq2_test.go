package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/llqt/llqt/formats/ggml"
)

// TestIQ2AsmMatchesGoExactly requires the kernels in use for the 2-bit grid
// types to return the Go reference's bits: both round each block's product
// before adding it (see block.DotIQ2_XXSQ8_K), on random, extreme, zero and
// small-scale rows, for one to nine blocks (through every grid row and sign
// pattern the random bytes reach).
func TestIQ2AsmMatchesGoExactly(t *testing.T) {
	if !hasAVX2 {
		t.Skip("assembly kernels not in use (purego build or no AVX2/FMA/F16C)")
	}
	rng := rand.New(rand.NewPCG(51, 52))
	for _, typ := range []ggml.Type{ggml.TypeIQ2_XXS, ggml.TypeIQ2_XS, ggml.TypeIQ2_S} {
		format, dot, _ := kernelFor(typ)
		for trial := 0; trial < 200; trial++ {
			cols := (1 + trial%9) * typ.BlockSize()
			w := randomRow(rng, typ, cols, trial%5 == 4)
			if trial%7 == 6 {
				clear(w)
			}
			x := randomActivations(rng, cols)
			if trial%3 == 0 {
				for i := range x {
					x[i] *= float32(math.Pow(10, float64(rng.IntN(7)-3)))
				}
			}
			a := convertAct(format, x)
			got, want := dot(w, a, cols), goDots[typ](w, a, cols)
			if math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("%v cols=%d trial %d: asm %g (%#x), go %g (%#x)", typ, cols, trial, got, math.Float32bits(got), want, math.Float32bits(want))
			}
		}
	}
}

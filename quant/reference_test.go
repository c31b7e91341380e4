package quant

import (
	"math"
	"math/rand/v2"

	"github.com/llqt/llqt/formats/ggml"
)

// testMatrix makes nrows rows of ne0 values that cover the hard cases of the
// block searches: Gaussian and heavy-tailed rows, all-zero and constant
// rows, tiny and large magnitudes, one-signed rows, values on half-steps,
// single outliers and sparse rows. It is deterministic for a seed.
func testMatrix(seed uint64, nrows, ne0 int) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	x := make([]float32, nrows*ne0)
	for i := 0; i < nrows; i++ {
		row := x[i*ne0 : (i+1)*ne0]
		switch i % 12 {
		case 0, 1:
			for j := range row {
				row[j] = float32(r.NormFloat64() * 0.02)
			}
		case 2: // heavy tailed
			for j := range row {
				row[j] = float32(r.NormFloat64() / (r.Float64() + 0.05) * 0.01)
			}
		case 3: // zeros, with one non-zero block
			if i%24 == 3 {
				for j := 0; j < 32 && j < ne0; j++ {
					row[j] = float32(r.NormFloat64())
				}
			}
		case 4: // constants per block
			for j := range row {
				row[j] = float32(j/32%5-2) * 0.25
			}
		case 5: // tiny
			for j := range row {
				row[j] = float32(r.NormFloat64() * 1e-20)
			}
		case 6: // large, near the f16 range
			for j := range row {
				row[j] = float32(r.NormFloat64() * 2000)
			}
		case 7: // one-signed
			for j := range row {
				row[j] = float32(math.Abs(r.NormFloat64()) + 0.5)
			}
		case 8: // half steps: ties for the rounding rules
			for j := range row {
				row[j] = float32(r.IntN(33)-16) * 0.5
			}
		case 9: // one outlier per block
			for j := range row {
				row[j] = float32(r.NormFloat64() * 0.01)
				if j%32 == 7 {
					row[j] = 3
				}
			}
		case 10: // sparse
			for j := range row {
				if r.IntN(10) == 0 {
					row[j] = float32(r.NormFloat64())
				}
			}
		case 11: // small integers, biased
			for j := range row {
				row[j] = float32(r.IntN(7)) + 0.25
			}
		}
	}
	return x
}

// testImatrix makes importance weights like llama-imatrix's mean squared
// activations: positive, spread over orders of magnitude, a few zero.
func testImatrix(seed uint64, ne0 int) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	w := make([]float32, ne0)
	for j := range w {
		w[j] = float32(math.Exp(r.NormFloat64() * 1.5))
		if r.IntN(50) == 0 {
			w[j] = 0
		}
	}
	return w
}

var referenceTypes = []ggml.Type{
	ggml.TypeQ4_0, ggml.TypeQ4_1, ggml.TypeQ5_0, ggml.TypeQ5_1, ggml.TypeQ8_0, ggml.TypeQ8_1,
	ggml.TypeQ2_K, ggml.TypeQ3_K, ggml.TypeQ4_K, ggml.TypeQ5_K, ggml.TypeQ6_K, ggml.TypeQ8_K,
	ggml.TypeIQ4_NL, ggml.TypeIQ4_XS, ggml.TypeIQ2_XXS, ggml.TypeIQ2_XS, ggml.TypeIQ2_S,
}

const refRows, refNe0 = 48, 512

// Reference input variants.
const (
	variantPlain      = "plain"       // testMatrix, no importance matrix
	variantImatrix    = "imatrix"     // testMatrix with testImatrix weights
	variantZeroWeight = "zero-weight" // importance weights zero on whole blocks
	variantExtreme    = "extreme"     // magnitudes that overflow fp16 scales
)

var referenceVariants = []string{variantPlain, variantImatrix, variantZeroWeight, variantExtreme}

func referenceCase(t ggml.Type, variant string) ([]float32, []float32) {
	x := testMatrix(uint64(t)+1, refRows, refNe0)
	switch variant {
	case variantImatrix:
		return x, testImatrix(uint64(t)+100, refNe0)
	case variantZeroWeight:
		w := testImatrix(uint64(t)+200, refNe0)
		for j := 0; j < 64; j++ {
			w[j] = 0 // the first two 32-blocks; part of the first 256-block
		}
		for j := 256; j < 512; j++ {
			w[j] = 0 // the whole second 256-block
		}
		return x, w
	case variantExtreme:
		r := rand.New(rand.NewPCG(uint64(t), 3))
		for i := range x {
			switch r.IntN(4) {
			case 0:
				x[i] *= 1e30
			case 1:
				x[i] *= 1e-38
			case 2:
				x[i] = float32(r.NormFloat64() * 1e6)
			}
		}
		return x, nil
	}
	return x, nil
}

// activation formats have no importance-weighted encoder in ggml.
func hasImatrixPath(t ggml.Type) bool {
	return t != ggml.TypeQ8_0 && t != ggml.TypeQ8_1 && t != ggml.TypeQ8_K
}

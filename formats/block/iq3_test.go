package block

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The decoding grids are the search grids' levels as bytes: 2l+1 for IQ3_S,
// and for IQ3_XXS four times that, except that level 7 reads 62, not 60.
func TestIQ3GridsMatchPoints(t *testing.T) {
	xxs := [8]uint8{4, 12, 20, 28, 36, 44, 52, 62}
	for i, p := range iq3XXSPoints {
		for k := range 4 {
			if got, want := uint8(IQ3XXSGrid[i]>>(8*k)), xxs[p>>(3*k)&7]; got != want {
				t.Fatalf("IQ3XXSGrid[%d] byte %d = %d, point %d says %d", i, k, got, p, want)
			}
		}
	}
	for i, p := range iq3SPoints {
		for k := range 4 {
			if got, want := uint8(IQ3SGrid[i]>>(8*k)), uint8(2*(p>>(3*k)&7)+1); got != want {
				t.Fatalf("IQ3SGrid[%d] byte %d = %d, point %d says %d", i, k, got, p, want)
			}
		}
	}
}

// neighboursBySort is iq3xs_init_impl's neighbour list of combination u:
// all points sorted by (squared distance, index), cut after the nwant-th
// distinct distance.
func neighboursBySort(g *iq3Grid, u, nwant int) []uint16 {
	type cand struct{ d2, j int }
	var cs []cand
	for j, l := range g.levels {
		d2 := 0
		for k := range 4 {
			d := int(l[k]) - (2*(u>>(3*k)&7) + 1)
			d2 += d * d
		}
		cs = append(cs, cand{d2, j})
	}
	slices.SortFunc(cs, func(a, b cand) int {
		if a.d2 != b.d2 {
			return a.d2 - b.d2
		}
		return a.j - b.j
	})
	var out []uint16
	nhave, d2 := 1, cs[0].d2
	for _, c := range cs {
		if c.d2 > d2 {
			if nhave == nwant {
				break
			}
			d2 = c.d2
			nhave++
		}
		out = append(out, uint16(c.j))
	}
	return out
}

func TestIQ3GridIndex(t *testing.T) {
	for _, c := range []struct {
		name   string
		g      *iq3Grid
		points []uint16
		nwant  int
	}{
		{"IQ3_XXS", iq3XXSGrid(), iq3XXSPoints[:], 2},
		{"IQ3_S", iq3SGrid(), iq3SPoints[:], 3},
	} {
		onGrid := 0
		for u, i := range c.g.index {
			if i >= 0 {
				onGrid++
				if int(c.points[i]) != u {
					t.Fatalf("%s: index[%d] = %d, which is point %d", c.name, u, i, c.points[i])
				}
				continue
			}
			off := -i - 1
			got := c.g.neighbours[off+1 : off+1+int32(c.g.neighbours[off])]
			if want := neighboursBySort(c.g, u, c.nwant); !slices.Equal(got, want) {
				t.Fatalf("%s: neighbours of %d = %v, want %v", c.name, u, got, want)
			}
		}
		if onGrid != len(c.points) {
			t.Errorf("%s: %d combinations on the grid, want %d", c.name, onGrid, len(c.points))
		}
	}
}

type iq3Format struct {
	name   string
	size   int
	encode func(y []byte, x, qw []float32)
	decode func(y []float32, x []byte)
	dot    func(w, a []byte, n int) float32
	// maxRelErr bounds the RMS round-trip error on Gaussian data relative
	// to the data's RMS, about 1.3 times what the encoder achieves.
	maxRelErr float64
}

var iq3Formats = []iq3Format{
	{"IQ3_XXS", IQ3_XXSBytes, EncodeIQ3_XXS, DecodeIQ3_XXS, DotIQ3_XXSQ8_K, 0.28},
	{"IQ3_S", IQ3_SBytes, EncodeIQ3_S, DecodeIQ3_S, DotIQ3_SQ8_K, 0.22},
}

// Encoding then decoding Gaussian rows keeps the error of a 3-bit format,
// with and without importance weights, and the reference dot agrees with
// the decoded row times the decoded activations.
func TestIQ3RoundTripAndDot(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	const n = 16 * QK_K
	for _, f := range iq3Formats {
		for _, weighted := range []bool{false, true} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			var qw []float32
			if weighted {
				qw = make([]float32, n)
				for i := range qw {
					qw[i] = float32(rng.Float64() + 0.1)
				}
			}
			enc := make([]byte, n/QK_K*f.size)
			f.encode(enc, x, qw)
			dec := make([]float32, n)
			f.decode(dec, enc)
			var errSum, sigSum float64
			for i := range x {
				errSum += float64((dec[i] - x[i]) * (dec[i] - x[i]))
				sigSum += float64(x[i] * x[i])
			}
			if rel := math.Sqrt(errSum / sigSum); rel > f.maxRelErr {
				t.Errorf("%s weighted=%v: relative RMS error %.3f", f.name, weighted, rel)
			}

			act := make([]float32, n)
			for i := range act {
				act[i] = float32(rng.NormFloat64())
			}
			a := make([]byte, n/QK_K*Q8_KBytes)
			EncodeQ8_K(a, act, nil)
			ad := make([]float32, n)
			DecodeQ8_K(ad, a)
			var want, mag float64
			for i := range dec {
				want += float64(dec[i]) * float64(ad[i])
				mag += math.Abs(float64(dec[i]) * float64(ad[i]))
			}
			if got := float64(f.dot(enc, a, n)); math.Abs(got-want) > 1e-5*mag {
				t.Errorf("%s weighted=%v: dot %g, decoded %g", f.name, weighted, got, want)
			}
		}
	}
}

// Zero input encodes to zero blocks, and a zero sub-block leaves the
// later sub-blocks' grid indices and signs where ggml writes them: IQ3_S
// moves them up by one sub-block, IQ3_XXS keeps them in place.
func TestIQ3ZeroSubBlocks(t *testing.T) {
	for _, f := range iq3Formats {
		enc := make([]byte, f.size)
		for i := range enc {
			enc[i] = 0xa5
		}
		f.encode(enc, make([]float32, QK_K), nil)
		if slices.ContainsFunc(enc, func(b byte) bool { return b != 0 }) {
			t.Errorf("%s: zero input encodes to %x", f.name, enc)
		}
	}
	x := make([]float32, QK_K)
	for i := 32; i < QK_K; i++ {
		x[i] = float32(i%7) - 3
	}
	enc := make([]byte, IQ3_SBytes)
	EncodeIQ3_S(enc, x, nil)
	if last := enc[2+56 : 2+64]; slices.ContainsFunc(last, func(b byte) bool { return b != 0 }) {
		t.Errorf("IQ3_S: qs of the last sub-block are %x, want zeros (shifted up)", last)
	}
	if sc := enc[106]; sc&0xf != 0 {
		t.Errorf("IQ3_S: zero sub-block has scale %d", sc&0xf)
	}
	encX := make([]byte, IQ3_XXSBytes)
	EncodeIQ3_XXS(encX, x, nil)
	if binary.LittleEndian.Uint32(encX[2+64:])>>28 != 0 {
		t.Errorf("IQ3_XXS: zero sub-block has a scale")
	}
}

// Decoders and dots accept any bytes (every index is in range).
func FuzzIQ3Decode(f *testing.F) {
	f.Add(make([]byte, IQ3_SBytes))
	f.Fuzz(func(t *testing.T, data []byte) {
		a := make([]byte, Q8_KBytes)
		for _, fm := range iq3Formats {
			if len(data) < fm.size {
				continue
			}
			out := make([]float32, QK_K)
			fm.decode(out, data[:fm.size])
			fm.dot(data[:fm.size], a, QK_K)
		}
	})
}

// Magnitudes near the float32 limits, denormals and all-zero importance
// weights encode without panicking (ggml aborts on the first: every
// neighbour distance overflows) and decode to something.
func TestIQ3ExtremeInputs(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	const n = 4 * QK_K
	x := make([]float32, n)
	for i := range x {
		switch rng.IntN(4) {
		case 0:
			x[i] = float32(rng.NormFloat64() * 1e30)
		case 1:
			x[i] = float32(rng.NormFloat64() * 1e-38)
		case 2:
			x[i] = float32(rng.NormFloat64() * 1e6)
		default:
			x[i] = float32(rng.NormFloat64())
		}
	}
	zeroWeights := make([]float32, n)
	for _, f := range iq3Formats {
		for _, qw := range [][]float32{nil, zeroWeights} {
			enc := make([]byte, n/QK_K*f.size)
			f.encode(enc, x, qw)
			f.decode(make([]float32, n), enc)
		}
	}
}

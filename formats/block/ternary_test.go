package block

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestPackTrits checks that every group of trits packs into a byte from
// which tritAt reads each trit back.
func TestPackTrits(t *testing.T) {
	for v := 0; v < 243; v++ {
		var u [5]uint8
		for k, r := 4, v; k >= 0; k, r = k-1, r/3 {
			u[k] = uint8(r % 3)
		}
		b := packTrits(u[:]...)
		for n := range u {
			if got := tritAt(b, n); got != int(u[n]) {
				t.Fatalf("trits %v: byte %d gives trit %d = %d", u, b, n, got)
			}
		}
		if v%3 == 0 { // the four-trit form: a fifth trit 0
			b4 := packTrits(u[:4]...)
			if b4 != b {
				t.Fatalf("four trits %v pack to %d, five with a 0 to %d", u[:4], b4, b)
			}
		}
	}
}

// ternaryRow makes blocks whose values are exactly d·{-1, 0, 1} (d a
// power of two per block, so the fp16 scale is exact), which both formats
// must reproduce exactly, with a few off-grid values.
func ternaryRow(rng *rand.Rand, nblocks int, offGrid bool) []float32 {
	x := make([]float32, nblocks*QK_K)
	for b := 0; b < nblocks; b++ {
		d := float32(math.Ldexp(1, rng.IntN(20)-10))
		xb := x[b*QK_K : (b+1)*QK_K]
		for i := range xb {
			xb[i] = d * float32(rng.IntN(3)-1)
		}
		xb[rng.IntN(QK_K)] = d // the block's largest magnitude
		if offGrid {
			for range 20 {
				xb[rng.IntN(QK_K)] = d * float32(rng.Float64()*2-1)
			}
		}
	}
	return x
}

func TestTernaryRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	formats := []struct {
		name   string
		size   int
		encode func(y []byte, x, qw []float32)
		decode func(y []float32, x []byte)
	}{
		{"TQ1_0", TQ1_0Bytes, EncodeTQ1_0, DecodeTQ1_0},
		{"TQ2_0", TQ2_0Bytes, EncodeTQ2_0, DecodeTQ2_0},
	}
	for _, f := range formats {
		for _, offGrid := range []bool{false, true} {
			const nb = 3
			x := ternaryRow(rng, nb, offGrid)
			y := make([]byte, nb*f.size)
			f.encode(y, x, nil)
			got := make([]float32, len(x))
			f.decode(got, y)
			for i, v := range x {
				var amax float64
				for _, w := range x[i/QK_K*QK_K : (i/QK_K+1)*QK_K] {
					amax = math.Max(amax, math.Abs(float64(w)))
				}
				tol := 0.0
				if offGrid {
					tol = amax / 2 // half a step
				}
				if e := math.Abs(float64(got[i]) - float64(v)); e > tol {
					t.Fatalf("%s offGrid=%v: element %d decodes to %g from %g", f.name, offGrid, i, got[i], v)
				}
			}
		}
	}
}

// TestTernaryRoundsHalfAway pins lroundf's rule on ties: ±d/2 goes to ±d.
func TestTernaryRoundsHalfAway(t *testing.T) {
	x := make([]float32, QK_K)
	x[0], x[1], x[2], x[200], x[250] = 1, 0.5, -0.5, 0.5, -0.5
	for _, f := range []struct {
		size   int
		encode func(y []byte, x, qw []float32)
		decode func(y []float32, x []byte)
	}{{TQ1_0Bytes, EncodeTQ1_0, DecodeTQ1_0}, {TQ2_0Bytes, EncodeTQ2_0, DecodeTQ2_0}} {
		y := make([]byte, f.size)
		f.encode(y, x, nil)
		got := make([]float32, QK_K)
		f.decode(got, y)
		if got[1] != 1 || got[2] != -1 || got[200] != 1 || got[250] != -1 {
			t.Errorf("ties decode to %v %v %v %v, want 1 -1 1 -1", got[1], got[2], got[200], got[250])
		}
	}
}

// q8KRow quantizes x to Q8_K with the reference encoder.
func q8KRow(x []float32) []byte {
	a := make([]byte, len(x)/QK_K*Q8_KBytes)
	EncodeQ8_K(a, x, nil)
	return a
}

// checkDotAgainstDecoded checks the reference dot of the row w (n elements)
// with random normal activations against dotDecoded of the decoded row and
// activations.
func checkDotAgainstDecoded(t *testing.T, rng *rand.Rand, name string, trial int, w []byte, n int,
	decode func(y []float32, x []byte), dot func(w, a []byte, n int) float32) {
	t.Helper()
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	a := q8KRow(x)
	wf, af := make([]float32, n), make([]float32, n)
	decode(wf, w)
	DecodeQ8_K(af, a)
	want, tol := dotDecoded(wf, af)
	if got := float64(dot(w, a, n)); math.Abs(got-want) > tol {
		t.Errorf("%s trial %d: dot %g, decoded %g (tol %g)", name, trial, got, want, tol)
	}
}

// dotDecoded is the float64 dot of a decoded weight row with a decoded
// Q8_K row, and a bound on float32 rounding.
func dotDecoded(w, a []float32) (dot, tol float64) {
	var mag float64
	for i := range w {
		p := float64(w[i]) * float64(a[i])
		dot += p
		mag += math.Abs(p)
	}
	return dot, 1e-5*mag + 1e-6
}

func TestTernaryDots(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	for _, f := range []struct {
		name   string
		size   int
		decode func(y []float32, x []byte)
		dot    func(w, a []byte, n int) float32
	}{{"TQ1_0", TQ1_0Bytes, DecodeTQ1_0, DotTQ1_0Q8_K}, {"TQ2_0", TQ2_0Bytes, DecodeTQ2_0, DotTQ2_0Q8_K}} {
		for trial := range 20 {
			nb := 1 + trial%4
			w := make([]byte, nb*f.size)
			for i := range w {
				w[i] = byte(rng.Uint32())
			}
			dOff := TQ1_0DOff
			if f.size == TQ2_0Bytes {
				dOff = TQ2_0DOff
			}
			for b := range nb {
				StoreF16(w[b*f.size+dOff:], float32(rng.Float64()*0.1))
			}
			checkDotAgainstDecoded(t, rng, f.name, trial, w, nb*QK_K, f.decode, f.dot)
		}
	}
}

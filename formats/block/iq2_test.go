package block

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// TestKSignsEven checks the sign table: the stored seven bits come back,
// and the eighth makes the number of minus signs even.
func TestKSignsEven(t *testing.T) {
	for i, s := range KSignsIQ2XS {
		if int(s&127) != i || bits.OnesCount8(s)%2 != 0 {
			t.Fatalf("KSignsIQ2XS[%d] = %#x", i, s)
		}
	}
}

// iq2Formats are the three formats with their byte sizes and functions.
var iq2Formats = []struct {
	name   string
	size   int
	encode func(y []byte, x, qw []float32)
	decode func(y []float32, x []byte)
	dot    func(w, a []byte, n int) float32
}{
	{"IQ2_XXS", IQ2_XXSBytes, EncodeIQ2_XXS, DecodeIQ2_XXS, DotIQ2_XXSQ8_K},
	{"IQ2_XS", IQ2_XSBytes, EncodeIQ2_XS, DecodeIQ2_XS, DotIQ2_XSQ8_K},
	{"IQ2_S", IQ2_SBytes, EncodeIQ2_S, DecodeIQ2_S, DotIQ2_SQ8_K},
}

// TestIQ2DotMatchesDecode checks each reference dot against the decoded
// weights times the decoded Q8_K activations, on random blocks.
func TestIQ2DotMatchesDecode(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	const nb = 3
	for _, f := range iq2Formats {
		for trial := 0; trial < 20; trial++ {
			w := make([]byte, nb*f.size)
			for i := range w {
				w[i] = byte(r.Uint32())
			}
			for b := 0; b < nb; b++ {
				StoreF16(w[b*f.size:], float32(r.Float64()*0.01))
			}
			x := make([]float32, nb*QK_K)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			a := make([]byte, nb*Q8_KBytes)
			EncodeQ8_K(a, x, nil)
			wf, af := make([]float32, len(x)), make([]float32, len(x))
			f.decode(wf, w)
			DecodeQ8_K(af, a)
			var want, mag float64
			for i := range wf {
				want += float64(wf[i]) * float64(af[i])
				mag += math.Abs(float64(wf[i]) * float64(af[i]))
			}
			got := float64(f.dot(w, a, len(x)))
			if math.Abs(got-want) > 1e-5*mag+1e-12 {
				t.Fatalf("%s trial %d: dot %g, decode·activation %g", f.name, trial, got, want)
			}
		}
	}
}

// TestIQ2RoundTrip encodes Gaussian rows with importance weights and
// bounds the decoding error; the all-zero row decodes to zeros.
func TestIQ2RoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	const n = 8 * QK_K
	x, qw := make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
		qw[i] = float32(math.Exp(r.NormFloat64()))
	}
	for _, f := range iq2Formats {
		y := make([]byte, n/QK_K*f.size)
		f.encode(y, x, qw)
		out := make([]float32, n)
		f.decode(out, y)
		var se float64
		for i := range x {
			d := float64(out[i] - x[i])
			se += d * d
		}
		if rmse := math.Sqrt(se / n); rmse > 0.6 {
			t.Errorf("%s: RMSE %.3f of unit Gaussian data", f.name, rmse)
		}
		zero := make([]float32, QK_K)
		y = make([]byte, f.size)
		for i := range y {
			y[i] = 0xAA
		}
		f.encode(y, zero, qw[:QK_K])
		f.decode(out[:QK_K], y)
		for i, v := range out[:QK_K] {
			if v != 0 {
				t.Fatalf("%s: zero row decodes to %g at %d", f.name, v, i)
			}
		}
	}
}

// TestIQ2DegenerateInputs encodes rows that make ggml assert or read
// stale state (zero weights, values overflowing the search): no panic.
func TestIQ2DegenerateInputs(t *testing.T) {
	x := make([]float32, 2*QK_K)
	for i := range x {
		x[i] = float32(i%7-3) * 1e30
	}
	zeroW := make([]float32, len(x))
	for _, f := range iq2Formats {
		y := make([]byte, 2*f.size)
		f.encode(y, x, zeroW)
		f.encode(y, x, nil)
		f.decode(make([]float32, len(x)), y)
	}
}

// TestIQ2DotMatchesGGML pins the reference dots to ggml-cpu's generic
// ggml_vec_dot_iq2_{xxs,xs,s}_q8_K (b4748, built without AVX): a C harness
// computed the same 300 dots of random rows and Q8_K activations, bit for
// bit; the hash is FNV-1a over their float32 bits in order.
func TestIQ2DotMatchesGGML(t *testing.T) {
	r := rand.New(rand.NewPCG(61, 62))
	h := fnv.New64a()
	for _, f := range iq2Formats {
		for trial := 0; trial < 100; trial++ {
			nb := 1 + trial%5
			w := make([]byte, nb*f.size)
			for i := range w {
				w[i] = byte(r.Uint32())
			}
			for b := 0; b < nb; b++ {
				StoreF16(w[b*f.size:], float32(r.Float64()*0.02+1e-4))
			}
			x := make([]float32, nb*QK_K)
			for i := range x {
				x[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(5)-2)))
			}
			a := make([]byte, nb*Q8_KBytes)
			EncodeQ8_K(a, x, nil)
			h.Write(binary.LittleEndian.AppendUint32(nil, math.Float32bits(f.dot(w, a, nb*QK_K))))
		}
	}
	if got := h.Sum64(); got != 0x5cb0ef7793eeaf9b {
		t.Errorf("dot hash %#x, ggml 0x5cb0ef7793eeaf9b", got)
	}
}

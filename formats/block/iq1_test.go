package block

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// TestIQ1SortedOrderIsStable pins the order of equal values: glibc's qsort
// (a merge sort) keeps the pairs of equal values in index order, and the
// split search depends on it.
func TestIQ1SortedOrderIsStable(t *testing.T) {
	xb := []float32{0.5, -1, 0.5, 0, -1, 0.5, float32(math.Copysign(0, -1)), 0}
	var order [8]int
	iq1SortedOrder(order[:], xb)
	if want := [8]int{1, 4, 3, 6, 7, 0, 2, 5}; order != want {
		t.Errorf("order %v, want %v", order, want)
	}
}

// gaussianBlocks returns nb super-blocks of Gaussian values and importance
// weights spread over orders of magnitude.
func gaussianBlocks(rng *rand.Rand, nb int) (x, w []float32) {
	x, w = make([]float32, nb*QK_K), make([]float32, nb*QK_K)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
		w[i] = float32(math.Exp(rng.NormFloat64()))
	}
	return x, w
}

// TestIQ1Encodings checks that the encoders' scales and levels fit the
// data: the relative RMS error on Gaussian blocks stays where the 1-bit
// formats put it, with and without weights.
func TestIQ1Encodings(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	x, w := gaussianBlocks(rng, 16)
	for _, f := range []struct {
		name   string
		size   int
		encode func(y []byte, x, qw []float32)
		decode func(y []float32, x []byte)
	}{{"IQ1_S", IQ1_SBytes, EncodeIQ1_S, DecodeIQ1_S}, {"IQ1_M", IQ1_MBytes, EncodeIQ1_M, DecodeIQ1_M}} {
		for _, qw := range [][]float32{nil, w} {
			y := make([]byte, len(x)/QK_K*f.size)
			f.encode(y, x, qw)
			got := make([]float32, len(x))
			f.decode(got, y)
			var se float64
			for i, v := range x {
				d := float64(got[i] - v)
				se += d * d
			}
			if rel := math.Sqrt(se / float64(len(x))); rel > 0.65 || rel < 0.3 {
				t.Errorf("%s weights=%v: relative RMSE %.3f", f.name, qw != nil, rel)
			}
		}
	}
}

// TestIQ1ZeroSubBlocks encodes a row whose second super-block has zero
// sub-blocks: they are stored with scale code 0 and grid point 0, and keep
// the shift their slot had in the first super-block, as ggml's encoders
// leave it; weights that are zero on a whole sub-block (where ggml aborts)
// store it the same way.
func TestIQ1ZeroSubBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 54))
	x, w := gaussianBlocks(rng, 2)
	clear(x[QK_K+64 : QK_K+96]) // IQ1_S sub-block 2, IQ1_M sub-blocks 4, 5
	wz := append([]float32(nil), w...)
	clear(wz[QK_K+96 : QK_K+128]) // IQ1_S sub-block 3, IQ1_M 6, 7: no weight

	s := make([]byte, 2*IQ1_SBytes)
	EncodeIQ1_S(s, x, wz)
	qh := func(b []byte, j int) uint16 { return binary.LittleEndian.Uint16(b[34+2*j:]) }
	for _, j := range []int{2, 3} {
		first, second := s[:IQ1_SBytes], s[IQ1_SBytes:]
		if got, want := qh(second, j), qh(first, j)&0x8000; got != want {
			t.Errorf("IQ1_S zero sub-block %d: qh %#04x, want shift bit %#04x of the first super-block", j, got, want)
		}
		for l := 0; l < 4; l++ {
			if second[2+4*j+l] != 0 {
				t.Errorf("IQ1_S zero sub-block %d: group %d has grid index low byte %d", j, l, second[2+4*j+l])
			}
		}
	}

	m := make([]byte, 2*IQ1_MBytes)
	EncodeIQ1_M(m, x, wz)
	first, second := m[:IQ1_MBytes], m[IQ1_MBytes:]
	for _, j := range []int{4, 5, 6, 7} {
		if got, want := second[32+j], first[32+j]&0x88; got != want {
			t.Errorf("IQ1_M zero sub-block %d: qh %#02x, want the first super-block's shift bits %#02x", j, got, want)
		}
		word := binary.LittleEndian.Uint16(second[48+2*(j/4):])
		if s := word >> (3 * (j % 4)) & 7; s != 0 {
			t.Errorf("IQ1_M zero sub-block %d: scale code %d", j, s)
		}
	}
}

// randomIQ1Row returns nb random blocks of format size with sane scales.
func randomIQ1Row(rng *rand.Rand, size, nb int) []byte {
	w := make([]byte, nb*size)
	for i := range w {
		w[i] = byte(rng.Uint32())
	}
	for b := 0; b < nb; b++ {
		blk := w[b*size : (b+1)*size]
		h := FloatToHalf(float32(rng.Float64()*0.05 + 0.001))
		if size == IQ1_SBytes {
			binary.LittleEndian.PutUint16(blk, h)
			continue
		}
		for i := range 4 { // IQ1_M: the half's nibbles in the scale words' top nibbles
			blk[49+2*i] = blk[49+2*i]&0x0f | byte(h>>(4*i)&0xf)<<4
		}
	}
	return w
}

// TestIQ1Dots checks the reference dots against the float64 dot of the
// decoded weights and activations.
func TestIQ1Dots(t *testing.T) {
	rng := rand.New(rand.NewPCG(55, 56))
	for _, f := range []struct {
		name   string
		size   int
		decode func(y []float32, x []byte)
		dot    func(w, a []byte, n int) float32
	}{{"IQ1_S", IQ1_SBytes, DecodeIQ1_S, DotIQ1_SQ8_K}, {"IQ1_M", IQ1_MBytes, DecodeIQ1_M, DotIQ1_MQ8_K}} {
		for trial := range 20 {
			nb := 1 + trial%4
			w := randomIQ1Row(rng, f.size, nb)
			checkDotAgainstDecoded(t, rng, f.name, trial, w, nb*QK_K, f.decode, f.dot)
		}
	}
}

// FuzzIQ1Decode decodes arbitrary bytes: no panics, and the dots agree
// with the decoded values wherever those are finite.
func FuzzIQ1Decode(f *testing.F) {
	f.Add(make([]byte, IQ1_SBytes*IQ1_MBytes))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range []struct {
			size   int
			decode func(y []float32, x []byte)
			dot    func(w, a []byte, n int) float32
		}{{IQ1_SBytes, DecodeIQ1_S, DotIQ1_SQ8_K}, {IQ1_MBytes, DecodeIQ1_M, DotIQ1_MQ8_K}} {
			nb := len(data) / c.size
			y := make([]float32, nb*QK_K)
			c.decode(y, data)
			a := make([]byte, nb*Q8_KBytes)
			_ = c.dot(data, a, nb*QK_K)
		}
	})
}

package block

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The checks against ggml's own code: testdata/ggml_harness.c, built from
// b4748's ggml-quants.c and ggml-cpu-quants.c without AVX, computed the
// same dots and encodings of the inputs below.

var (
	ggmlSizes     = [4]int{TQ1_0Bytes, TQ2_0Bytes, IQ1_SBytes, IQ1_MBytes}
	ggmlDotFuncs  = [4]func(w, a []byte, n int) float32{DotTQ1_0Q8_K, DotTQ2_0Q8_K, DotIQ1_SQ8_K, DotIQ1_MQ8_K}
	ggmlEncoders  = [4]func(y []byte, x, qw []float32){EncodeTQ1_0, EncodeTQ2_0, EncodeIQ1_S, EncodeIQ1_M}
	ggmlTypeNames = [4]string{"TQ1_0", "TQ2_0", "IQ1_S", "IQ1_M"}
)

// setBlockScale stores v as the fp16 scale of block b of format ti.
func setBlockScale(ti int, b []byte, v float32) {
	h := FloatToHalf(v)
	switch ti {
	case 0:
		b[TQ1_0DOff], b[TQ1_0DOff+1] = byte(h), byte(h>>8)
	case 1:
		b[TQ2_0DOff], b[TQ2_0DOff+1] = byte(h), byte(h>>8)
	case 2:
		b[0], b[1] = byte(h), byte(h>>8)
	case 3:
		for i := range 4 { // the half's nibbles in the scale words' top nibbles
			b[49+2*i] = b[49+2*i]&0x0f | byte(h>>(4*i)&0xf)<<4
		}
	}
}

// forEachGGMLDotCase calls f with 100 random rows (1-5 blocks, sane
// scales) and Q8_K activation rows (magnitudes from 0.01 to 100) per
// format.
func forEachGGMLDotCase(f func(ti int, w, a []byte, nb int)) {
	r := rand.New(rand.NewPCG(71, 72))
	for ti := range 4 {
		for trial := 0; trial < 100; trial++ {
			nb := 1 + trial%5
			size := ggmlSizes[ti]
			w := make([]byte, nb*size)
			for i := range w {
				w[i] = byte(r.Uint32())
			}
			for b := 0; b < nb; b++ {
				setBlockScale(ti, w[b*size:(b+1)*size], float32(r.Float64()*0.02+1e-4))
			}
			x := make([]float32, nb*QK_K)
			for i := range x {
				x[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(5)-2)))
			}
			a := make([]byte, nb*Q8_KBytes)
			EncodeQ8_K(a, x, nil)
			f(ti, w, a, nb)
		}
	}
}

// forEachGGMLEncodeCase calls f with rows of 512 per format, with and
// without importance weights (IQ1_S only with): Gaussian, heavy-tailed,
// half-step (ties for the sorts and roundings), one-signed and
// outlier rows, none with a sub-block below the 1-bit formats' zero
// threshold (there ggml reads a stale or uninitialized shift).
func forEachGGMLEncodeCase(f func(ti int, x, w []float32, ne0 int)) {
	const ne0, rows = 512, 12
	r := rand.New(rand.NewPCG(73, 74))
	for ti := range 4 {
		x := make([]float32, rows*ne0)
		for i := 0; i < rows; i++ {
			row := x[i*ne0 : (i+1)*ne0]
			for j := range row {
				switch i % 6 {
				case 0:
					row[j] = float32(r.NormFloat64() * 0.02)
				case 1:
					row[j] = float32(r.NormFloat64() / (r.Float64() + 0.05) * 0.01)
				case 2:
					row[j] = float32(r.IntN(9)-4) * 0.5
					if j%16 == 0 {
						row[j] = 1.5 // no all-zero sub-block
					}
				case 3:
					row[j] = float32(math.Abs(r.NormFloat64()) + 0.5)
				case 4:
					row[j] = float32(r.NormFloat64() * 0.01)
					if j%32 == 7 {
						row[j] = 3
					}
				case 5:
					row[j] = float32(r.NormFloat64() * 2000)
				}
			}
		}
		w := make([]float32, ne0)
		for j := range w {
			w[j] = float32(math.Exp(r.NormFloat64() * 1.5))
		}
		if ti != 2 {
			f(ti, x, nil, ne0)
		}
		f(ti, x, w, ne0)
	}
}

// TestTernaryIQ1DotsMatchGGML pins the reference dots to ggml-cpu's generic
// ggml_vec_dot_{tq1_0,tq2_0,iq1_s,iq1_m}_q8_K: the C harness computed the
// same 400 dots, bit for bit; the hash is FNV-1a over their float32 bits in
// order.
func TestTernaryIQ1DotsMatchGGML(t *testing.T) {
	h := fnv.New64a()
	forEachGGMLDotCase(func(ti int, w, a []byte, nb int) {
		h.Write(binary.LittleEndian.AppendUint32(nil, math.Float32bits(ggmlDotFuncs[ti](w, a, nb*QK_K))))
	})
	if got := h.Sum64(); got != 0x6785632fa7f157cb {
		t.Errorf("dot hash %#x, ggml 0x6785632fa7f157cb", got)
	}
}

// ggmlEncodings are the sha256 sums of the C harness's encodings of the
// forEachGGMLEncodeCase rows, in order.
var ggmlEncodings = []struct {
	typ      string
	weighted bool
	sha256   string
}{
	{"TQ1_0", false, "3d28377ebeb76369a1c9d75fdbf27dbc299852184b7c9e687359b22f8d22265e"},
	{"TQ1_0", true, "3d28377ebeb76369a1c9d75fdbf27dbc299852184b7c9e687359b22f8d22265e"},
	{"TQ2_0", false, "7cbb668bada07510d18759dfcb8bad5edd7663c7aafa2cf753318d509ed0cc00"},
	{"TQ2_0", true, "7cbb668bada07510d18759dfcb8bad5edd7663c7aafa2cf753318d509ed0cc00"},
	{"IQ1_S", true, "b92637ea8d29cd895ca9705af1eaefe612abdcc28ddf1820f87248febac68b6d"},
	{"IQ1_M", false, "b7bd3b91041212a614825830b8c56a8b09bef846b31949aaa1756390d9026590"},
	{"IQ1_M", true, "ffe1d1f95997bf58cad75784064f7bdcc96eeb1f63b0e9cd977b3ec2de8632d2"},
}

// encodeRows encodes the rows of ne0 in x one by one, as the harness does.
func encodeRows(ti int, x, w []float32, ne0 int) []byte {
	rs := ne0 / QK_K * ggmlSizes[ti]
	y := make([]byte, len(x)/ne0*rs)
	for r := 0; r < len(x)/ne0; r++ {
		ggmlEncoders[ti](y[r*rs:(r+1)*rs], x[r*ne0:(r+1)*ne0], w)
	}
	return y
}

// TestTernaryIQ1EncodersMatchGGML pins the encoders to b4748's
// quantize_tq1_0, quantize_tq2_0, quantize_iq1_s and quantize_iq1_m on rows
// the golden files lack: ties on half steps, heavy tails, one-signed rows,
// magnitudes near fp16's range, and IQ1_M without weights.
func TestTernaryIQ1EncodersMatchGGML(t *testing.T) {
	if testing.Short() {
		t.Skip("the 1-bit searches take a few seconds")
	}
	i := 0
	forEachGGMLEncodeCase(func(ti int, x, w []float32, ne0 int) {
		c := ggmlEncodings[i]
		i++
		if got := fmt.Sprintf("%x", sha256.Sum256(encodeRows(ti, x, w, ne0))); got != c.sha256 {
			t.Errorf("%s weighted=%v: sha256 %s, ggml %s", c.typ, c.weighted, got, c.sha256)
		}
	})
}

// TestGGMLHarness runs the inputs above through the C harness named by
// $LLQT_GGML_HARNESS (see testdata/ggml_harness.c) and compares every
// result, where the pinned tests only compare hashes; it also decodes the
// dot cases' weight rows with both.
func TestGGMLHarness(t *testing.T) {
	bin := os.Getenv("LLQT_GGML_HARNESS")
	if bin == "" {
		t.Skip("LLQT_GGML_HARNESS is not set (see testdata/ggml_harness.c)")
	}
	var in bytes.Buffer
	put := func(v any) { _ = binary.Write(&in, binary.LittleEndian, v) }
	var want []func(out []byte) int // each checks its result and returns its length
	forEachGGMLDotCase(func(ti int, w, a []byte, nb int) {
		in.WriteByte('D')
		put(uint8(ti))
		put(uint32(nb))
		in.Write(w)
		in.Write(a)
		got := ggmlDotFuncs[ti](w, a, nb*QK_K)
		n := len(want)
		want = append(want, func(out []byte) int {
			if c := binary.LittleEndian.Uint32(out); c != math.Float32bits(got) {
				t.Errorf("dot %d (%s, %d blocks): ggml %g, llqt %g", n, ggmlTypeNames[ti], nb, math.Float32frombits(c), got)
			}
			return 4
		})
	})
	ggmlDecoders := [4]func(y []float32, x []byte){DecodeTQ1_0, DecodeTQ2_0, DecodeIQ1_S, DecodeIQ1_M}
	forEachGGMLDotCase(func(ti int, w, _ []byte, nb int) {
		in.WriteByte('Q')
		put(uint8(ti))
		put(uint32(nb))
		in.Write(w)
		got := make([]float32, nb*QK_K)
		ggmlDecoders[ti](got, w)
		want = append(want, func(out []byte) int {
			for i, v := range got {
				if c := binary.LittleEndian.Uint32(out[4*i:]); c != math.Float32bits(v) {
					t.Errorf("%s decode, element %d: ggml %g, llqt %g", ggmlTypeNames[ti], i, math.Float32frombits(c), v)
					break
				}
			}
			return 4 * len(got)
		})
	})
	forEachGGMLEncodeCase(func(ti int, x, w []float32, ne0 int) {
		in.WriteByte('E')
		put(uint8(ti))
		put(uint32(len(x) / ne0))
		put(uint32(ne0))
		put(x)
		if w == nil {
			in.WriteByte(0)
		} else {
			in.WriteByte(1)
			put(w)
		}
		got := encodeRows(ti, x, w, ne0)
		want = append(want, func(out []byte) int {
			if !bytes.Equal(out[:len(got)], got) {
				t.Errorf("%s weighted=%v: encodings differ", ggmlTypeNames[ti], w != nil)
			}
			return len(got)
		})
	})
	dir := t.TempDir()
	inPath, outPath := filepath.Join(dir, "in.bin"), filepath.Join(dir, "out.bin")
	if err := os.WriteFile(inPath, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(bin, inPath, outPath).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", bin, err, msg)
	}
	out, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, check := range want {
		out = out[check(out):]
	}
	if len(out) != 0 {
		t.Errorf("%d bytes left over", len(out))
	}
}

package quant

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/block"
	"github.com/llqt/llqt/formats/ggml"
)

var allTypes = append(append([]ggml.Type{}, referenceTypes...), ggml.TypeIQ3_XXS, ggml.TypeIQ3_S, ggml.TypeTQ1_0, ggml.TypeTQ2_0, ggml.TypeIQ1_S, ggml.TypeIQ1_M)

// unweighted is the imatrix a test passes for "no importance matrix": nil,
// except for the types ggml cannot encode without one (requiresImatrix),
// which get equal weights.
func unweighted(typ ggml.Type, ne0 int) []float32 {
	if !requiresImatrix(typ) {
		return nil
	}
	w := make([]float32, ne0)
	for i := range w {
		w[i] = 1
	}
	return w
}

func gaussian(seed uint64, n int, sigma float64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * sigma)
	}
	return x
}

func rmse(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s / float64(len(a)))
}

func TestLayoutSizes(t *testing.T) {
	// Bytes per block from ggml-common.h's block structs.
	want := map[ggml.Type][2]int{
		ggml.TypeQ4_0: {32, 18}, ggml.TypeQ4_1: {32, 20}, ggml.TypeQ5_0: {32, 22}, ggml.TypeQ5_1: {32, 24},
		ggml.TypeQ8_0: {32, 34}, ggml.TypeQ8_1: {32, 36}, ggml.TypeQ2_K: {256, 84}, ggml.TypeQ3_K: {256, 110},
		ggml.TypeQ4_K: {256, 144}, ggml.TypeQ5_K: {256, 176}, ggml.TypeQ6_K: {256, 210}, ggml.TypeQ8_K: {256, 292},
		ggml.TypeIQ4_NL: {32, 18}, ggml.TypeIQ4_XS: {256, 136},
		ggml.TypeIQ2_XXS: {256, 66}, ggml.TypeIQ2_XS: {256, 74}, ggml.TypeIQ2_S: {256, 82},
		ggml.TypeIQ3_XXS: {256, 98}, ggml.TypeIQ3_S: {256, 110},
		ggml.TypeTQ1_0: {256, 54}, ggml.TypeTQ2_0: {256, 66}, ggml.TypeIQ1_S: {256, 50}, ggml.TypeIQ1_M: {256, 56},
	}
	for typ, w := range want {
		if typ.BlockSize() != w[0] || typ.TypeSize() != w[1] {
			t.Errorf("%s: ggml table says %d/%d, block struct %d/%d", typ, typ.BlockSize(), typ.TypeSize(), w[0], w[1])
		}
		out, err := Quantize(typ, gaussian(1, 3*512, 1), 512, unweighted(typ, 512))
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 3*512/w[0]*w[1] {
			t.Errorf("%s: %d bytes for 3 rows of 512", typ, len(out))
		}
	}
	if len(codecs) != len(want) {
		t.Errorf("%d codecs, %d layouts checked", len(codecs), len(want))
	}
}

// TestRoundTripError bounds the reconstruction error of each format on
// Gaussian data, relative to the data's standard deviation. The bounds are
// about 1.5 times what the formats achieve, so a broken search or packing
// fails them.
func TestRoundTripError(t *testing.T) {
	bounds := map[ggml.Type]float64{
		ggml.TypeQ8_0: 0.008, ggml.TypeQ8_1: 0.008, ggml.TypeQ8_K: 0.01,
		ggml.TypeQ6_K: 0.028, ggml.TypeQ5_0: 0.065, ggml.TypeQ5_1: 0.057, ggml.TypeQ5_K: 0.057,
		ggml.TypeQ4_0: 0.13, ggml.TypeQ4_1: 0.12, ggml.TypeQ4_K: 0.115, ggml.TypeIQ4_NL: 0.12, ggml.TypeIQ4_XS: 0.12,
		ggml.TypeQ3_K: 0.24, ggml.TypeQ2_K: 0.45, ggml.TypeIQ3_XXS: 0.38, ggml.TypeIQ3_S: 0.25,
		ggml.TypeIQ2_XXS: 0.62, ggml.TypeIQ2_XS: 0.56, ggml.TypeIQ2_S: 0.43,
		// The ternary formats scale by the block's largest magnitude and
		// round to {-1, 0, 1}: made for ternary-trained weights, they
		// keep little of a Gaussian (0.81).
		ggml.TypeTQ1_0: 0.85, ggml.TypeTQ2_0: 0.85,
		// The 1-bit formats give 0.48-0.58 here.
		ggml.TypeIQ1_S: 0.65, ggml.TypeIQ1_M: 0.65,
	}
	const n = 64 * 512
	x := gaussian(2, n, 0.5)
	im := testImatrix(3, 512)
	for _, typ := range allTypes {
		for _, withIm := range []bool{false, true} {
			if withIm && !hasImatrixPath(typ) {
				continue
			}
			w := unweighted(typ, 512)
			if withIm {
				w = im
			}
			q, err := Quantize(typ, x, 512, w)
			if err != nil {
				t.Fatal(err)
			}
			y, err := Dequantize(typ, q, n)
			if err != nil {
				t.Fatal(err)
			}
			rel := rmse(x, y) / 0.5
			t.Logf("%-7s imatrix=%-5v relative RMSE %.4f", typ, withIm, rel)
			if rel > bounds[typ] {
				t.Errorf("%s imatrix=%v: relative RMSE %.4f above %.4f", typ, withIm, rel, bounds[typ])
			}
		}
	}
}

func TestEdgeRows(t *testing.T) {
	const ne0 = 256
	constant := make([]float32, ne0)
	for i := range constant {
		constant[i] = 0.75
	}
	negConst := make([]float32, ne0)
	for i := range negConst {
		negConst[i] = -3
	}
	tiny := gaussian(5, ne0, 1e-30)
	huge := gaussian(6, ne0, 1e4)
	cases := []struct {
		name string
		x    []float32
		tol  float64 // largest allowed |error| relative to max |x|
	}{
		{"zeros", make([]float32, ne0), 0},
		{"constant", constant, 0.0},
		{"negative constant", negConst, 0.0},
		{"tiny", tiny, -1},
		{"huge", huge, 0.6},
	}
	for _, typ := range allTypes {
		for _, c := range cases {
			q, err := Quantize(typ, c.x, ne0, unweighted(typ, ne0))
			if err != nil {
				t.Fatalf("%s %s: %v", typ, c.name, err)
			}
			if err := ValidateRows(typ, q, ne0); err != nil {
				t.Errorf("%s %s: %v", typ, c.name, err)
			}
			y, err := Dequantize(typ, q, ne0)
			if err != nil {
				t.Fatal(err)
			}
			var amax, maxErr float64
			for i := range y {
				amax = math.Max(amax, math.Abs(float64(c.x[i])))
				maxErr = math.Max(maxErr, math.Abs(float64(y[i])-float64(c.x[i])))
			}
			switch {
			case c.name == "zeros":
				if maxErr != 0 {
					t.Errorf("%s: zeros decode with error %g", typ, maxErr)
				}
			case c.tol < 0:
				// Below fp16 range the scale flushes to zero: all values
				// decode to (almost) nothing, never to garbage.
				if maxErr > 2*amax {
					t.Errorf("%s %s: error %g for max %g", typ, c.name, maxErr, amax)
				}
			case strings.Contains(c.name, "constant"):
				// A constant is representable up to fp16 rounding of the
				// scale(s) and the coarse codes of the 2- and 3-bit formats.
				lim := 0.01
				switch typ {
				case ggml.TypeQ2_K, ggml.TypeQ3_K, ggml.TypeIQ4_NL, ggml.TypeIQ4_XS:
					lim = 0.05
				case ggml.TypeIQ2_XS, ggml.TypeIQ2_S:
					lim = 0.1
				case ggml.TypeIQ2_XXS:
					// No IQ2_XXS grid point has eight equal magnitudes.
					lim = 0.75
				case ggml.TypeIQ1_S, ggml.TypeIQ1_M:
					lim = 0.15 // ggml scales the super-block up by 1.125 (IQ1_M 1.1125) on purpose
				}
				if typ == ggml.TypeIQ3_XXS || typ == ggml.TypeIQ3_S {
					// The grids lack the points of four equal large levels,
					// so a constant takes the nearest neighbours'.
					lim = 0.3
				}
				if maxErr > lim*amax {
					t.Errorf("%s %s: error %g for value %g", typ, c.name, maxErr, amax)
				}
			default:
				tol := c.tol
				if typ == ggml.TypeIQ1_S || typ == ggml.TypeIQ1_M {
					tol = 0.9 // three levels per sub-block, weighted toward the largest values
				}
				if maxErr > tol*amax {
					t.Errorf("%s %s: max error %g for max %g", typ, c.name, maxErr, amax)
				}
			}
		}
	}
}

// TestRoundingTies pins the per-format rounding rules on exact ties: Q8_0
// rounds half away from zero (roundf), the K-quants half to even.
func TestRoundingTies(t *testing.T) {
	x := make([]float32, 32)
	x[0] = 127 // d = 1 exactly
	x[1], x[2], x[3] = 2.5, -2.5, 0.5
	q, err := Quantize(ggml.TypeQ8_0, x, 32, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := [3]int8{int8(q[3]), int8(q[4]), int8(q[5])}; got != [3]int8{3, -3, 1} {
		t.Errorf("Q8_0 ties: %v, want [3 -3 1]", got)
	}
	// Q4_0 adds 8.5 and truncates: max -8 gives d = max/-8 = 1, so 0.5 → 9.0 → code 9
	// and -0.5 → 8.0 → code 8 (rounding half up, not to even).
	y := make([]float32, 32)
	y[0] = -8
	y[1] = 0.5
	y[2] = -0.5
	q, err = Quantize(ggml.TypeQ4_0, y, 32, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c1, c2 := q[2+1]&0xF, q[2+2]&0xF; c1 != 9 || c2 != 8 {
		t.Errorf("Q4_0 codes for ±0.5 at d=1: %d %d, want 9 8", c1, c2)
	}
}

func TestActivationFormatFields(t *testing.T) {
	x := gaussian(9, 512, 1)
	q, err := Quantize(ggml.TypeQ8_1, x, 512, nil)
	if err != nil {
		t.Fatal(err)
	}
	for b := 0; b < 16; b++ {
		blk := q[36*b:]
		d, s := block.LoadF16(blk), block.LoadF16(blk[2:])
		var sum int
		for j := 0; j < 32; j++ {
			sum += int(int8(blk[4+j]))
		}
		// s is rounded from the unrounded float32 d, so allow d's fp16 error.
		if want := float64(sum) * float64(d); math.Abs(float64(s)-want) > 2e-3*math.Abs(want)+1e-6 {
			t.Errorf("Q8_1 block %d: s = %v, want d·Σq ≈ %v", b, s, want)
		}
	}
	q, err = Quantize(ggml.TypeQ8_K, x, 512, nil)
	if err != nil {
		t.Fatal(err)
	}
	for b := 0; b < 2; b++ {
		blk := q[292*b:]
		for g := 0; g < 16; g++ {
			var sum int16
			for j := 0; j < 16; j++ {
				sum += int16(int8(blk[4+16*g+j]))
			}
			if got := int16(uint16(blk[260+2*g]) | uint16(blk[261+2*g])<<8); got != sum {
				t.Errorf("Q8_K block %d bsums[%d] = %d, want %d", b, g, got, sum)
			}
		}
	}
}

// TestChunkingDoesNotMatter encodes a tensor whole and in uneven row chunks.
func TestChunkingDoesNotMatter(t *testing.T) {
	const ne0, nrows = 512, 13
	x := testMatrix(11, nrows, ne0)
	im := testImatrix(12, ne0)
	for _, typ := range allTypes {
		for _, w := range [][]float32{unweighted(typ, ne0), im} {
			whole, err := Quantize(typ, x, ne0, w)
			if err != nil {
				t.Fatal(err)
			}
			rs, _ := RowSize(typ, ne0)
			parts := make([]byte, len(whole))
			for _, cut := range [][2]int{{0, 5}, {5, 6}, {6, 13}} {
				if err := QuantizeRows(typ, parts[cut[0]*rs:cut[1]*rs], x[cut[0]*ne0:cut[1]*ne0], ne0, w); err != nil {
					t.Fatal(err)
				}
			}
			if d := firstMismatch(typ, parts, whole, ne0); d != "" {
				t.Errorf("%s imatrix=%v: chunked output differs: %s", typ, w != nil, d)
			}
		}
	}
}

func TestRejectsBadInput(t *testing.T) {
	x := gaussian(13, 4*256, 1)
	if _, err := Quantize(ggml.TypeQ4_K, x, 128, nil); err == nil {
		t.Error("Q4_K accepted rows of 128")
	}
	if _, err := Quantize(ggml.TypeQ4_0, x[:100], 32, nil); err == nil {
		t.Error("accepted a partial row")
	}
	if _, err := Quantize(ggml.Type(99), x, 256, nil); err == nil {
		t.Error("accepted an unknown type")
	}
	if _, err := Quantize(ggml.TypeIQ2_XXS, x, 256, nil); err == nil {
		t.Error("accepted IQ2_XXS without an importance matrix")
	}
	if _, err := Quantize(ggml.TypeF16, x, 256, nil); err == nil {
		t.Error("Quantize accepted F16 (plain types go through Codec)")
	}
	if _, err := Quantize(ggml.TypeQ4_K, x, 256, make([]float32, 255)); err == nil {
		t.Error("accepted an imatrix of the wrong length")
	}
	if err := QuantizeRows(ggml.TypeQ8_0, make([]byte, 10), x, 256, nil); err == nil {
		t.Error("accepted a short destination")
	}
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		y := append([]float32(nil), x...)
		y[2*256+17] = bad
		_, err := Quantize(ggml.TypeQ6_K, y, 256, nil)
		if err == nil || !strings.Contains(err.Error(), "row 2") {
			t.Errorf("%v in row 2: error %v", bad, err)
		}
	}
	if _, err := Dequantize(ggml.TypeQ4_K, make([]byte, 143), 256); err == nil {
		t.Error("Dequantize accepted a short block")
	}
	if _, err := Dequantize(ggml.TypeQ4_0, make([]byte, 18), 16); err == nil {
		t.Error("Dequantize accepted a partial block")
	}
}

func TestValidateRows(t *testing.T) {
	const ne0 = 512
	for _, typ := range allTypes {
		q, err := Quantize(typ, gaussian(14, 3*ne0, 1), ne0, unweighted(typ, ne0))
		if err != nil {
			t.Fatal(err)
		}
		if err := ValidateRows(typ, q, ne0); err != nil {
			t.Errorf("%s: valid data rejected: %v", typ, err)
		}
		rs, _ := RowSize(typ, ne0)
		// Put +inf into the main scale of the second block of row 1.
		off := rs + typ.TypeSize()
		switch typ {
		case ggml.TypeQ2_K:
			off += 80
		case ggml.TypeQ3_K:
			off += 108
		case ggml.TypeQ6_K:
			off += 208
		case ggml.TypeTQ1_0:
			off += block.TQ1_0DOff
		case ggml.TypeTQ2_0:
			off += block.TQ2_0DOff
		}
		switch typ {
		case ggml.TypeQ8_K:
			q[off], q[off+1], q[off+2], q[off+3] = 0, 0, 0x80, 0x7f
		case ggml.TypeIQ1_M:
			// The half 0x7c00 spread over the top nibbles of the four
			// scale words (bytes 49, 51, 53, 55).
			for i, nib := range []byte{0x0, 0x0, 0xc, 0x7} {
				q[off+49+2*i] = q[off+49+2*i]&0x0f | nib<<4
			}
		default:
			q[off], q[off+1] = 0x00, 0x7c
		}
		err = ValidateRows(typ, q, ne0)
		if err == nil || !strings.Contains(err.Error(), "row 1, block 1") || !strings.Contains(err.Error(), "infinite") {
			t.Errorf("%s: inf scale in row 1 block 1: %v", typ, err)
		}
	}
	f16 := []byte{0, 0x3c, 0x01, 0x7c}
	if err := ValidateRows(ggml.TypeF16, f16, 2); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("F16 NaN: %v", err)
	}
	if err := ValidateRows(ggml.TypeQ4_0, make([]byte, 17), 32); err == nil {
		t.Error("accepted a partial row")
	}
}

func TestCodec(t *testing.T) {
	var c formats.Codec = Codec{}
	x := gaussian(15, 2*256, 1)
	for _, typ := range []ggml.Type{ggml.TypeF32, ggml.TypeF16, ggml.TypeBF16, ggml.TypeQ4_K, ggml.TypeQ8_0} {
		raw, err := c.Encode(typ, x, 256)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		y, err := c.Decode(typ, raw, len(x))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if e := rmse(x, y); e > 0.1 {
			t.Errorf("%s: round trip RMSE %g", typ, e)
		}
		if typ == ggml.TypeF32 && e(x, y) {
			t.Error("F32 round trip is not exact")
		}
	}
	if _, err := (Codec{}).Encode(ggml.TypeMXFP4, x, 256); err == nil {
		t.Error("Codec encoded MXFP4 (newer than b4748, which has no encoder for it)")
	}
	huge := make([]float32, 64)
	huge[40] = 3e38 // Q8_0's scale 3e38/127 overflows fp16
	if _, err := (Codec{}).Encode(ggml.TypeQ8_0, huge, 32); err == nil || !strings.Contains(err.Error(), "row 1") {
		t.Errorf("Codec accepted an infinite scale: %v", err)
	}
}

func e(a, b []float32) bool {
	for i := range a {
		if a[i] != b[i] {
			return true
		}
	}
	return false
}

func TestDequantizeInto(t *testing.T) {
	x := gaussian(16, 256, 1)
	q, _ := Quantize(ggml.TypeQ5_K, x, 256, nil)
	want, _ := Dequantize(ggml.TypeQ5_K, q, 256)
	got := make([]float32, 256)
	if err := DequantizeInto(ggml.TypeQ5_K, got, q); err != nil {
		t.Fatal(err)
	}
	if e(got, want) {
		t.Error("DequantizeInto differs from Dequantize")
	}
	if err := DequantizeInto(ggml.TypeQ5_K, got[:255], q); err == nil {
		t.Error("accepted a partial block")
	}
}

func FuzzDequantizeValidate(f *testing.F) {
	f.Add(uint8(0), []byte{})
	f.Add(uint8(3), make([]byte, 144))
	f.Add(uint8(13), make([]byte, 292*2))
	f.Fuzz(func(t *testing.T, ti uint8, data []byte) {
		typ := allTypes[int(ti)%len(allTypes)]
		bs, ts := typ.BlockSize(), typ.TypeSize()
		n := len(data) / ts * bs
		out, err := Dequantize(typ, data, n)
		if len(data)%ts == 0 {
			if err != nil || len(out) != n {
				t.Fatalf("%s: %d bytes: %v", typ, len(data), err)
			}
			if n > 0 {
				_ = ValidateRows(typ, data, bs)
			}
		} else if err == nil {
			t.Fatalf("%s: accepted %d bytes", typ, len(data))
		}
	})
}

func FuzzQuantize(f *testing.F) {
	f.Add(uint8(6), uint64(1), 1.0, uint8(0))
	f.Add(uint8(13), uint64(2), 1e30, uint8(1))
	f.Add(uint8(12), uint64(3), 1e-40, uint8(2))
	f.Fuzz(func(t *testing.T, ti uint8, seed uint64, scale float64, weights uint8) {
		typ := allTypes[int(ti)%len(allTypes)]
		x := gaussian(seed, 512, scale)
		im := unweighted(typ, 512)
		switch weights % 3 {
		case 1:
			im = testImatrix(seed, 512)
		case 2:
			im = make([]float32, 512) // all zero: NaN scales inside the searches
		}
		q, err := Quantize(typ, x, 512, im)
		for _, v := range x {
			if !finite(v) {
				if err == nil {
					t.Fatal("accepted non-finite input")
				}
				return
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Dequantize(typ, q, 512); err != nil {
			t.Fatal(err)
		}
	})
}

func TestQuantizeParallel(t *testing.T) {
	const ne0, nrows = 256, 23
	x := testMatrix(41, nrows, ne0)
	for _, typ := range []ggml.Type{ggml.TypeQ4_K, ggml.TypeIQ4_XS, ggml.TypeQ8_0} {
		want, err := Quantize(typ, x, ne0, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, workers := range []int{0, 1, 2, 5, 64} {
			got, err := QuantizeParallel(typ, x, ne0, nil, workers)
			if err != nil {
				t.Fatal(err)
			}
			if d := firstMismatch(typ, got, want, ne0); d != "" {
				t.Errorf("%s with %d workers: %s", typ, workers, d)
			}
		}
	}
	bad := append([]float32(nil), x...)
	bad[20*ne0+3] = float32(math.NaN())
	bad[9*ne0] = float32(math.Inf(1))
	if _, err := QuantizeParallel(ggml.TypeQ4_K, bad, ne0, nil, 4); err == nil || !strings.Contains(err.Error(), "row 9") {
		t.Errorf("error %v, want one naming row 9", err)
	}
}

func TestCodecEncodeTensor(t *testing.T) {
	const ne0, ne1, ne2 = 256, 3, 2
	x := testMatrix(51, ne1*ne2, ne0)
	im := testImatrix(52, ne0*ne2)
	c := Codec{Imatrix: map[string][]float32{"blk.0.ffn_down_exps.weight": im, "blk.0.attn_q.weight": im[:ne0],
		"token_embd.weight": im[:7]}, Workers: 3}
	got, err := c.EncodeTensor("blk.0.ffn_down_exps.weight", ggml.TypeQ4_K, x, []uint64{ne0, ne1, ne2})
	if err != nil {
		t.Fatal(err)
	}
	// Each expert uses its own slice of the weights.
	want0, _ := Quantize(ggml.TypeQ4_K, x[:ne0*ne1], ne0, im[:ne0])
	want1, _ := Quantize(ggml.TypeQ4_K, x[ne0*ne1:], ne0, im[ne0:])
	if d := firstMismatch(ggml.TypeQ4_K, got, append(want0, want1...), ne0); d != "" {
		t.Errorf("3-D tensor: %s", d)
	}
	got, err = c.EncodeTensor("blk.0.attn_q.weight", ggml.TypeIQ4_XS, x, []uint64{ne0, ne1 * ne2})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Quantize(ggml.TypeIQ4_XS, x, ne0, im[:ne0])
	if d := firstMismatch(ggml.TypeIQ4_XS, got, want, ne0); d != "" {
		t.Errorf("2-D tensor: %s", d)
	}
	// token_embd with mismatched weights is encoded without them.
	got, err = c.EncodeTensor("token_embd.weight", ggml.TypeQ6_K, x, []uint64{ne0, ne1 * ne2})
	want, _ = Quantize(ggml.TypeQ6_K, x, ne0, nil)
	if err != nil || firstMismatch(ggml.TypeQ6_K, got, want, ne0) != "" {
		t.Errorf("token_embd: %v", err)
	}
	c.Imatrix["output.weight"] = im[:5]
	if _, err := c.EncodeTensor("output.weight", ggml.TypeQ6_K, x, []uint64{ne0, ne1 * ne2}); err == nil {
		t.Error("accepted mismatched weights for output.weight")
	}
	// Plain types ignore the weights.
	if _, err := c.EncodeTensor("blk.0.attn_q.weight", ggml.TypeF16, x, []uint64{ne0, ne1 * ne2}); err != nil {
		t.Error(err)
	}
}

package main

import (
	"github.com/llqt/llqt/formats/block"
	"strconv"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The Q8_0-family block dots (Q8_0, Q4_0, Q5_0 and IQ4_NL weights against
// Q8_0 activations) come in several shapes: one weight row times one
// activation row (the plain dot, and a loop of it over rows for
// matrix-vector products), one weight row times four activation rows, a 4×4
// tile, and with VNNI a 2×16 panel over repacked activations for Q8_0, Q4_0
// and IQ4_NL (prompt batches). All compute the same float32 value for every output, so
// that a product does not depend on how it was cut into shapes:
//
//	isum_b = Σ x_b[i]·y_b[i]            exact int32, block b
//	d_b    = f32(dx_b) · f32(dy_b)      exact: two halves' significands fit
//	dot    = fma(f32(isum_b), d_b, dot) over the blocks in order, from +0
//
// which is ggml's order of summation with the multiply-add fused. Because
// the int32 block sums are exact, a shape may form them in any way: the wide
// shapes reduce the eight int32 lanes of four products together (into four
// sums that share one convert and one multiply-add), and the panel forms
// sixteen columns' sums in the lanes of two registers directly.

// words1 is 16 int16 ones, the vpmaddwd operand that sums byte-product pairs.
var words1 Mem

// gridDot returns the eight int32 partial sums of the 32 byte products of
// the signed quants q (|q| in ax) and the Q8_0 activation quants at y.
func gridDot(q, ax VecVirtual, y Mem, vnni bool) VecVirtual {
	sy := YMM()
	VMOVDQU(y, sy)
	VPSIGNB(q, sy, sy)
	if vnni {
		p := YMM()
		VPXOR(p, p, p)
		VPDPBUSD(sy, ax, p)
		return p
	}
	VPMADDUBSW(sy, ax, sy)
	VPMADDWD(words1, sy, sy)
	return sy
}

// A byteDots accumulates, in the eight int32 lanes of an accumulator, the
// sums of four weight quants (broadcast) times four signed activation
// quants, over a run of steps: one vpdpbusd a step with AVX512-VNNI, the
// weights unsigned. Without it (the AVX2 byte panels) each step is a
// vpmaddubsw into int16 pairs, exact only while a pair sum fits in an
// int16: unsignedWeights of at most umax ≤ 127 (2·umax·128 < 2^15), the
// int16 results of up to wordSteps steps added (vpaddw, still exact) before
// one vpmaddwd against int16 ones widens them. Types whose quants are
// signed bytes have word panels on AVX2 instead (see paneli16.go): the sign
// fix-ups cost more than multiplying int16.
type byteDots struct {
	mode      byteMode
	ones      VecVirtual // 16 int16 ones, AVX2 only
	wordSteps int        // steps summed in int16 before widening, AVX2 only
}

type byteMode int

const (
	vnniDots byteMode = iota
	unsignedWeights
	// wordPanel marks a type whose AVX2 panel is a word panel.
	wordPanel
)

// newByteDots sets up the accumulation in the given mode for runs of
// runSteps steps; umax bounds unsigned weights.
func newByteDots(mode byteMode, umax, runSteps int) byteDots {
	if mode == vnniDots {
		return byteDots{mode: mode}
	}
	d := byteDots{mode: mode, ones: YMM(), wordSteps: 1}
	VMOVDQU(words1, d.ones)
	// Summing a whole run in int16 needs one register per accumulator;
	// anything between one step and a whole run would need two.
	if mode == unsignedWeights && runSteps*2*umax*128 <= 32767 {
		d.wordSteps = runSteps
	}
	return d
}

// accumulators returns n accumulators for run: zeroed for vpdpbusd, which
// adds to them; the AVX2 steps take the first widened sums as they are.
func (d byteDots) accumulators(n int) []VecVirtual {
	accs := make([]VecVirtual, n)
	for i := range accs {
		if d.mode == vnniDots {
			accs[i] = zeroY()
		}
	}
	return accs
}

// run emits the accumulation of steps steps into accs (from accumulators):
// step(s) loads step s's operands and calls dot(i, w, y) for each
// accumulator i it feeds.
func (d byteDots) run(accs []VecVirtual, steps int, step func(s int, dot func(i int, w, y VecVirtual))) {
	words := make([]VecVirtual, len(accs))
	counts := make([]int, len(accs))
	started := make([]bool, len(accs))
	widen := func(i int) {
		VPMADDWD(d.ones, words[i], words[i])
		if started[i] {
			VPADDD(words[i], accs[i], accs[i])
		} else {
			accs[i], started[i] = words[i], true
		}
		words[i], counts[i] = nil, 0
	}
	for s := range steps {
		step(s, func(i int, w, y VecVirtual) {
			if d.mode == vnniDots {
				VPDPBUSD(y, w, accs[i])
				return
			}
			p := YMM()
			VPMADDUBSW(y, w, p)
			if words[i] == nil {
				words[i] = p
			} else {
				VPADDW(p, words[i], words[i])
			}
			if counts[i]++; counts[i] == d.wordSteps || s == steps-1 {
				widen(i)
			}
		})
	}
}

// group4 forms the four products prod(0..3) and sums the eight lanes of
// each within each 128-bit half: lane k of the low half (and of the high
// half) holds the sum of lanes 0-3 (4-7) of prod(k). Pairs are combined as
// they are formed, which keeps at most three products live. (Unpacks and
// adds measured faster than three vphaddd on Zen 4.)
func group4(prod func(i int) VecVirtual) VecVirtual {
	pair := func(a, b VecVirtual) VecVirtual {
		lo, hi := YMM(), YMM()
		VPUNPCKLDQ(b, a, lo) // [a0 b0 a1 b1]
		VPUNPCKHDQ(b, a, hi) // [a2 b2 a3 b3]
		VPADDD(hi, lo, lo)   // [a0+a2 b0+b2 a1+a3 b1+b3]
		return lo
	}
	p01 := pair(prod(0), prod(1))
	p23 := pair(prod(2), prod(3))
	lo, hi := YMM(), YMM()
	VPUNPCKLQDQ(p23, p01, lo)
	VPUNPCKHQDQ(p23, p01, hi)
	VPADDD(hi, lo, lo)
	return lo
}

// fold adds the halves of two group4 results: lanes 0-3 hold a's four
// sums, lanes 4-7 b's.
func fold(a, b VecVirtual) VecVirtual {
	t, u := YMM(), YMM()
	VPERM2I128(U8(0x21), b, a, t) // [a.hi | b.lo]
	VPBLENDD(U8(0xf0), b, a, u)   // [a.lo | b.hi]
	VPADDD(u, t, t)
	return t
}

// foldLow adds the halves of one group4 result into the low four lanes and
// zeroes the high four (a VEX.128 write clears them).
func foldLow(a VecVirtual) VecVirtual {
	t := XMM()
	VEXTRACTI128(U8(1), a, t)
	VPADDD(t, a.AsX(), t)
	return t.AsY().(VecVirtual)
}

// gatherF16 converts the halves at ms (at most 8) into the lanes of a ymm in
// order; lanes past len(ms) are 0.
func gatherF16(ms []Mem) VecVirtual {
	g, h := GP32(), XMM()
	MOVWLZX(ms[0], g)
	VMOVD(g, h)
	for i := 1; i < len(ms); i++ {
		VPINSRW(U8(i), ms[i], h, h)
	}
	y := YMM()
	if len(ms) <= 4 {
		VCVTPH2PS(h, y.AsX()) // VEX.128: the high lanes are zeroed
	} else {
		VCVTPH2PS(h, y)
	}
	return y
}

// splatF16 returns [f32(a) ×4 | f32(b) ×4].
func splatF16(a, b Mem) VecVirtual {
	x, t := XMM(), XMM()
	VPBROADCASTW(a, x)
	VPBROADCASTW(b, t)
	VPUNPCKLQDQ(t, x, x)
	y := YMM()
	VCVTPH2PS(x, y)
	return y
}

// gridSigned decodes the block at x+xo into signed quants q and their
// absolute values ax, the operands of gridDot's sign trick.
func gridSigned(k q8Kind, x Register, xo int) (q, ax VecVirtual) {
	q = k.decode(x, xo)
	ax = YMM()
	VPSIGNB(q, q, ax)
	return q, ax
}

// offsets returns the pointers base + i*stride for i < n, as registers.
func offsets(base, stride Register, n int) []Register {
	ps := []Register{base}
	for i := 1; i < n; i++ {
		p := GP64()
		MOVQ(ps[i-1], p)
		ADDQ(stride, p)
		ps = append(ps, p)
	}
	return ps
}

// blockLoop2 emits a loop over nb blocks, two per iteration (body(0) and
// body(1), for unrolling only: the blocks still chain in order), then one;
// step advances the pointers by the given number of blocks.
func blockLoop2(name string, nb Register, body func(b int), step func(blocks int)) {
	Label(name + "_loop2")
	CMPQ(nb, Imm(2))
	JL(LabelRef(name + "_tail"))
	body(0)
	body(1)
	step(2)
	SUBQ(Imm(2), nb)
	JMP(LabelRef(name + "_loop2"))
	Label(name + "_tail")
	TESTQ(nb, nb)
	JZ(LabelRef(name + "_done"))
	body(0)
	step(1)
	Label(name + "_done")
}

// stepper returns a step function that advances every x pointer by xStride
// and every y pointer by yStride bytes per block.
func stepper(xs []Register, xStride int, ys []Register, yStride int) func(int) {
	return func(blocks int) {
		for _, p := range xs {
			ADDQ(U32(blocks*xStride), p)
		}
		for _, p := range ys {
			ADDQ(U32(blocks*yStride), p)
		}
	}
}

// prefetchQ8 prefetches, in the many-rows (decode) kernels of the Q8_0
// family, the size bytes of weight blocks prefetchQ8Dist bytes past x
// (0: none; PREFETCH_Q8_DIST=n when generating overrides it). On a 5th-gen
// Xeon at 2 threads 1 KiB ahead raised BenchmarkMatVecDRAM Q8_0 from
// 22.5-22.9 to 31-37 GB/s and Q4_0 from 10-13 to 15 GB/s, and llqt bench
// tg128 of the 1.1B-shape files from 12.0 to 15.8 t/s (Q8_0) and 16.6 to
// 23.1 (Q4_0); 8 KiB ahead then cut the decode step (eval, 2 threads, two
// rounds) from 61.6/61.1 to 52.0/51.8 ms (Q8_0) and 47.0 to 39.7/38.3 ms
// (Q4_0), where 4 and 16 KiB were a little slower and 32 KiB more so. An
// earlier session measured a 2 KiB prefetch in a different Q8_0 kernel as
// 5-10% slower on a Zen 4: that needs checking there.
func prefetchQ8(x Register, size int) {
	if prefetchQ8Dist == 0 {
		return
	}
	for off := 0; off < size; off += 64 {
		PREFETCHT0(Mem{Base: x, Disp: prefetchQ8Dist + off})
	}
}

var prefetchQ8Dist = 8192

// genQ8Dot emits the one-by-one shape, func(x, y *byte, nb int) float32,
// or with rows, func(x, y *byte, nb, rows int, out *float32) storing the
// dots of rows consecutive weight rows with y at out[0..rows): four rows
// side by side (q8Rows4), then one at a time. A single row's four blocks'
// integer sums are formed together; the chain then takes them one by one in
// scalar fused multiply-adds. vnni (rows only) forms the integer sums with
// vpdpbusd, the same integers.
func genQ8Dot(k q8Kind, rows, vnni, zmm bool) {
	name := k.name + "AVX2"
	var x, y, nb, nbAll, nrows, out Register
	if rows {
		name = k.name + "Rows" + setSuffix(vnni)
		if zmm {
			name = k.name + "RowsZMM"
		}
		TEXT(name, NOSPLIT, "func(x, y *byte, nb, rows int, out *float32)")
		Doc(name+" stores at out[r] the dot product of nb "+k.doc+" blocks at x + r*nb*"+strconv.Itoa(k.xStride),
			"and nb Q8_0 blocks at y, for r < rows (rows > 0).")
		x = Load(Param("x"), GP64())
		nbAll = Load(Param("nb"), GP64())
		nrows = Load(Param("rows"), GP64())
		out = Load(Param("out"), GP64())
		rowBytes := GP64()
		IMUL3Q(U32(k.xStride), nbAll, rowBytes)
		Label(name + "_rows4")
		CMPQ(nrows, Imm(4))
		JL(LabelRef(name + "_rows1"))
		q8Rows4(k, name, x, rowBytes, nbAll, out, vnni, zmm)
		SUBQ(Imm(4), nrows)
		JMP(LabelRef(name + "_rows4"))
		Label(name + "_rows1")
		TESTQ(nrows, nrows)
		JZ(LabelRef(name + "_ret"))
		Label(name + "_row")
		y = Load(Param("y"), GP64())
		nb = GP64()
		MOVQ(nbAll, nb)
	} else {
		TEXT(name, NOSPLIT, "func(x, y *byte, nb int) float32")
		Doc(name + " returns the dot product of nb " + k.doc + " blocks at x and nb Q8_0 blocks at y.")
		x, y, nb = Load(Param("x"), GP64()), Load(Param("y"), GP64()), Load(Param("nb"), GP64())
	}
	acc := zeroX()
	product := func(b int) VecVirtual {
		q, ax := gridSigned(k, x, b*k.xStride)
		return gridDot(q, ax, Mem{Base: y, Disp: b*block.Q8_0Bytes + 2}, vnni)
	}
	Label(name + "_loop4")
	if rows {
		prefetchQ8(x, 4*k.xStride)
	}
	CMPQ(nb, Imm(4))
	JL(LabelRef(name + "_loop1"))
	{
		s := foldLow(group4(product)).AsX()
		VCVTDQ2PS(s, s)
		var dxs, dys []Mem
		for b := range 4 {
			dxs = append(dxs, Mem{Base: x, Disp: b * k.xStride})
			dys = append(dys, Mem{Base: y, Disp: b * block.Q8_0Bytes})
		}
		d, e := gatherF16(dxs).AsX(), gatherF16(dys).AsX()
		VMULPS(e, d, d)
		for b := range 4 {
			sb, db := s, d
			if b > 0 {
				sb, db = XMM(), XMM()
				VPERMILPS(U8(b), s, sb)
				VPERMILPS(U8(b), d, db)
			}
			VFMADD231SS(sb, db, acc)
		}
	}
	ADDQ(U32(4*k.xStride), x)
	ADDQ(U32(4*block.Q8_0Bytes), y)
	SUBQ(Imm(4), nb)
	JMP(LabelRef(name + "_loop4"))
	Label(name + "_loop1")
	TESTQ(nb, nb)
	JZ(LabelRef(name + "_done"))
	{
		p := product(0)
		// [p01 p23 p01 p23 | p45 p67 …], then the total in lane 0.
		VPHADDD(p, p, p)
		VPHADDD(p, p, p)
		s := foldLow(p).AsX()
		VCVTDQ2PS(s, s)
		d := loadF16x1(Mem{Base: x})
		e := loadF16x1(Mem{Base: y})
		VMULSS(e, d, d)
		VFMADD231SS(s, d, acc)
	}
	ADDQ(U32(k.xStride), x)
	ADDQ(U32(block.Q8_0Bytes), y)
	DECQ(nb)
	JMP(LabelRef(name + "_loop1"))
	Label(name + "_done")
	VZEROUPPER()
	if rows {
		// x has reached the next row.
		VMOVSS(acc, Mem{Base: out})
		ADDQ(U8(4), out)
		DECQ(nrows)
		JNZ(LabelRef(name + "_row"))
		Label(name + "_ret")
		VZEROUPPER()
		RET()
		return
	}
	Store(acc, ReturnIndex(0))
	RET()
}

// q8Rows4 emits the dots of the four weight rows at x, x + rowBytes, … with
// the activation row (nb blocks), stored at out[0..4); x and out then point
// past them. Lane r of one xmm accumulates row r, so one vector FMA takes a
// block of all four rows: a row's chain of FMAs (one per block, each waiting
// for the last) bounded the one-row loop for the small Q4_0 blocks. Each
// lane's steps are the single dot's, so the bits are the same.
func q8Rows4(k q8Kind, name string, x, rowBytes, nbAll, out Register, vnni, zmm bool) {
	xs := offsets(x, rowBytes, 4)
	y := Load(Param("y"), GP64())
	nb := GP64()
	MOVQ(nbAll, nb)
	acc := zeroX()
	var eights VecVirtual // the unsigned operand must be a register
	if k.nibblesMinus8 {
		eights = YMM()
		VMOVDQU(bytes8, eights)
	}
	switch {
	case zmm:
		q8QuadsZ(k, name, xs, y, nb, acc)
	case !vnni && k.nibblesMinus8:
		q8PairsY(k, name, xs, y, nb, acc, eights)
	}
	Label(name + "_r4block")
	TESTQ(nb, nb)
	JZ(LabelRef(name + "_r4done"))
	for _, xr := range xs {
		prefetchQ8(xr, k.xStride)
	}
	var h VecVirtual
	if k.nibblesMinus8 {
		// The nibbles as the unsigned operand against the signed
		// activations, and 8·Σy taken off each row's lanes: no sign steps
		// (vpsignb twice) nor bias subtraction per row.
		yv := YMM()
		VMOVDQU(Mem{Base: y, Disp: 2}, yv)
		udot := func(u VecVirtual) VecVirtual {
			if vnni {
				p := zeroY()
				VPDPBUSD(yv, u, p)
				return p
			}
			p := YMM() // not into u: eights stays for the next block
			VPMADDUBSW(yv, u, p)
			VPMADDWD(words1, p, p)
			return p
		}
		bias := udot(eights)
		h = group4(func(r int) VecVirtual {
			u := udot(nibbles32(Mem{Base: xs[r], Disp: 2}))
			VPSUBD(bias, u, u)
			return u
		})
	} else {
		h = group4(func(r int) VecVirtual {
			q, ax := gridSigned(k, xs[r], 0)
			return gridDot(q, ax, Mem{Base: y, Disp: 2}, vnni)
		})
	}
	var dxs []Mem
	for _, xr := range xs {
		dxs = append(dxs, Mem{Base: xr})
	}
	addQuad(h, dxs, Mem{Base: y}, acc)
	for _, xr := range xs {
		ADDQ(U32(k.xStride), xr)
	}
	ADDQ(U32(block.Q8_0Bytes), y)
	DECQ(nb)
	JMP(LabelRef(name + "_r4block"))
	Label(name + "_r4done")
	VMOVUPS(acc, Mem{Base: out})
	ADDQ(U8(16), out)
	MOVQ(xs[3], x) // the end of row 3: the next row
}

// addQuad adds to the four lanes of acc the four block products of one
// block step: the integer sums h (as group4 leaves them) times the half
// scales at quad (one per lane) times the one at single, each lane one
// fused multiply-add, as the single dot takes a block.
func addQuad(h VecVirtual, quad []Mem, single Mem, acc VecVirtual) {
	s := foldLow(h).AsX()
	VCVTDQ2PS(s, s)
	d := gatherF16(quad).AsX()
	e := XMM()
	VPBROADCASTW(single, e)
	VCVTPH2PS(e, e)
	VMULPS(e, d, d)
	VFMADD231PS(s, d, acc)
}

// genQ8Quad emits one weight row times four activation rows,
// func(x, y *byte, ystride, nb int, out *float32, outstride int). The lanes
// of one xmm accumulate the four outputs.
func genQ8Quad(k q8Kind, vnni bool) {
	name := k.name + "x4" + setSuffix(vnni)
	TEXT(name, NOSPLIT, "func(x, y *byte, ystride, nb int, out *float32, outstride int)")
	Doc(name+" stores at out + c*outstride (in floats) the dot product of nb "+k.doc+" blocks at x",
		"and nb Q8_0 blocks at y + c*ystride (in bytes), for c < 4.")
	needs(vnni)
	xs := []Register{Load(Param("x"), GP64())}
	ys := offsets(Load(Param("y"), GP64()), Load(Param("ystride"), GP64()), 4)
	nb := Load(Param("nb"), GP64())
	acc := zeroX()
	blockLoop2(name, nb, func(b int) {
		q, ax := gridSigned(k, xs[0], b*k.xStride)
		h := group4(func(c int) VecVirtual {
			return gridDot(q, ax, Mem{Base: ys[c], Disp: b*block.Q8_0Bytes + 2}, vnni)
		})
		var quad []Mem
		for c := range 4 {
			quad = append(quad, Mem{Base: ys[c], Disp: b * block.Q8_0Bytes})
		}
		addQuad(h, quad, Mem{Base: xs[0], Disp: b * k.xStride}, acc)
	}, stepper(xs, k.xStride, ys, block.Q8_0Bytes))
	storeLanes(4, acc)
}

// genQ8Tile emits the 4×4 tile, func(x *byte, xstride int, y *byte,
// ystride, nb int, out *float32, outstride int): four weight rows (x +
// r*xstride) times four activation rows (y + c*ystride), the sixteen dots
// stored at out + r + c*outstride (in floats). A group is one weight row's
// four products of a block; two rows' groups share one accumulator.
func genQ8Tile(k q8Kind, vnni bool) {
	name := "tile" + k.name[len("dot"):] + "x4x4" + setSuffix(vnni)
	TEXT(name, NOSPLIT, "func(x *byte, xstride int, y *byte, ystride, nb int, out *float32, outstride int)")
	Doc(name+" stores at out + r + c*outstride (in floats) the dot product of nb "+k.doc+" blocks at x + r*xstride",
		"and nb Q8_0 blocks at y + c*ystride (in bytes), for r, c < 4.")
	needs(vnni)
	xs := offsets(Load(Param("x"), GP64()), Load(Param("xstride"), GP64()), 4)
	ys := offsets(Load(Param("y"), GP64()), Load(Param("ystride"), GP64()), 4)
	nb := Load(Param("nb"), GP64())
	accs := []VecVirtual{zeroY(), zeroY()} // rows 0-1, rows 2-3
	blockLoop2(name, nb, func(b int) {
		var dys []Mem
		for c := range 4 {
			dys = append(dys, Mem{Base: ys[c], Disp: b * block.Q8_0Bytes})
		}
		dy := gatherF16(dys)
		VINSERTF128(U8(1), dy.AsX(), dy, dy)
		for pair := range 2 {
			var hs [2]VecVirtual
			for h := range 2 {
				q, ax := gridSigned(k, xs[2*pair+h], b*k.xStride)
				hs[h] = group4(func(c int) VecVirtual {
					return gridDot(q, ax, Mem{Base: ys[c], Disp: b*block.Q8_0Bytes + 2}, vnni)
				})
			}
			s := fold(hs[0], hs[1])
			d := splatF16(Mem{Base: xs[2*pair], Disp: b * k.xStride}, Mem{Base: xs[2*pair+1], Disp: b * k.xStride})
			VMULPS(dy, d, d)
			VCVTDQ2PS(s, s)
			VFMADD231PS(s, d, accs[pair])
		}
	}, stepper(xs, k.xStride, ys, block.Q8_0Bytes))
	// Rows r0 r1 in accs[0]'s halves, r2 r3 in accs[1]'s; transpose to columns.
	s0, s1 := accs[0], accs[1]
	t0, t1 := YMM(), YMM()
	VUNPCKLPS(s1, s0, t0) // [r0c0 r2c0 r0c1 r2c1 | r1c0 r3c0 r1c1 r3c1]
	VUNPCKHPS(s1, s0, t1) // the same for c2, c3
	o, stride := outArgs()
	for i, t := range []VecVirtual{t0, t1} {
		hi, col := XMM(), XMM()
		VEXTRACTF128(U8(1), t, hi)
		VUNPCKLPS(hi, t.AsX(), col) // column 2i: r0 r1 r2 r3
		if i > 0 {
			ADDQ(stride, o)
		}
		VMOVUPS(col, Mem{Base: o})
		ADDQ(stride, o)
		VUNPCKHPS(hi, t.AsX(), col) // column 2i+1
		VMOVUPS(col, Mem{Base: o})
	}
	VZEROUPPER()
	RET()
}

// Panel layout (see packPanel in package kernels): sixteen Q8_0 activation
// rows repacked per block as 8 steps k of 64 bytes, step k holding quants
// 4k..4k+3 of rows 0-7 then of rows 8-15; then the sixteen rows' quant sums
// Σy as int32; then their scales as float32.
const (
	panelBlock  = 8*64 + 16*4 + 16*4
	panelSums   = 8 * 64
	panelScales = panelSums + 16*4
)

// A panelKind is a weight type the panel kernel handles: its quants are
// u - bias with u an unsigned byte, so that u can be vpdpbusd's unsigned
// operand against the signed activation quants; bias·Σy is then taken off
// every output of a block (bias a power of two, 1<<biasShift).
type panelKind struct {
	name      string
	xStride   int
	doc       string
	biasShift int
	umax      int      // the largest unsigned quant
	avx2      byteMode // how the AVX2 panel forms the sums (see byteDots)
	// constant is loaded into a register once and passed to unsigned.
	constant *Mem
	// unsigned emits the setup of a block at x+xo and returns a function
	// giving dword k of its 32 unsigned quants broadcast to all lanes of a
	// register of width wd.
	unsigned func(wd width, x Register, xo int, c VecVirtual) func(k int) VecVirtual
}

var (
	bytes80   Mem // 32 × 0x80
	kvaluesU8 Mem // IQ4_NL's 16 values + 128, twice
)

// nibbleDwords returns the broadcast dwords (ymm or zmm, as wd says) of the
// 32 nibble indices of the 16 bytes at m (mask: 0x0f bytes): k < 4 are low
// nibbles of bytes 4k.., k ≥ 4 high nibbles of bytes 4(k-4)..; lookup (if
// not nil) maps each index through a table.
func nibbleDwords(wd width, m Mem, mask VecVirtual, lookup func(v VecVirtual)) func(k int) VecVirtual {
	return func(k int) VecVirtual {
		v := wd.vec()
		VPBROADCASTD(Mem{Base: m.Base, Disp: m.Disp + 4*(k%4)}, v)
		if k >= 4 {
			VPSRLW(U8(4), v, v)
		}
		wd.and(mask, v, v)
		if lookup != nil {
			lookup(v)
		}
		return v
	}
}

var panelKinds = []panelKind{
	{"Q8_0Q8_0", block.Q8_0Bytes, "Q8_0", 7, 255, wordPanel, &bytes80, func(wd width, x Register, xo int, c80 VecVirtual) func(k int) VecVirtual {
		return func(k int) VecVirtual {
			v := wd.vec()
			VPBROADCASTD(Mem{Base: x, Disp: xo + 2 + 4*k}, v)
			wd.xor(c80, v, v) // x + 128
			return v
		}
	}},
	{"Q4_0Q8_0", block.Q4_0Bytes, "Q4_0", 3, 15, unsignedWeights, &mask0F, func(wd width, x Register, xo int, mask VecVirtual) func(k int) VecVirtual {
		return nibbleDwords(wd, Mem{Base: x, Disp: xo + 2}, mask, nil)
	}},
	{"IQ4NLQ8_0", block.IQ4_NLBytes, "IQ4_NL", 7, 241, wordPanel, &mask0F, func(wd width, x Register, xo int, mask VecVirtual) func(k int) VecVirtual {
		return nibbleDwords(wd, Mem{Base: x, Disp: xo + 2}, mask, func(v VecVirtual) {
			t := wd.vec() // vpshufb's table must be a register
			wd.loadConst(kvaluesU8, t)
			VPSHUFB(v, t, v)
		})
	}},
}

// genPanel emits func(x *byte, xstride int, p *byte, nb int, out *float32,
// outstride int): two weight rows (x, x + xstride) times a panel of sixteen
// activation rows, the 32 dots stored at out + r + c*outstride (in floats).
// Each vpdpbusd multiplies four quants of a weight row, broadcast, with the
// same four of eight activation rows, so the eight lanes of an accumulator
// are eight outputs' exact block sums and no lanes need reducing.
func genPanel(k panelKind, vnni bool) {
	name := "panel" + k.name + "x2x16" + setSuffix(vnni)
	TEXT(name, NOSPLIT, "func(x *byte, xstride int, p *byte, nb int, out *float32, outstride int)")
	Doc(name+" stores at out + r + c*outstride (in floats) the dot product of nb "+k.doc+" blocks at x + r*xstride",
		"and activation row c of the panel at p (nb blocks), for r < 2 and c < 16.")
	needs(vnni)
	xs := offsets(Load(Param("x"), GP64()), Load(Param("xstride"), GP64()), 2)
	p := Load(Param("p"), GP64())
	nb := Load(Param("nb"), GP64())
	accs := zeroPanel()
	mode := k.avx2
	if vnni {
		mode = vnniDots
	}
	consts := YMM()
	VMOVDQU(*k.constant, consts)
	dots := newByteDots(mode, k.umax, 8)
	blockLoop2(name, nb, func(b int) {
		xo, po := b*k.xStride, b*panelBlock
		sums := dots.accumulators(4) // [2*row + column octet]
		var dword [2]func(int) VecVirtual
		for r := range 2 {
			dword[r] = k.unsigned(ymmWidth, xs[r], xo, consts)
		}
		dots.run(sums, 8, func(kk int, dot func(i int, w, y VecVirtual)) {
			// Loaded once for both weight rows: as memory operands of the
			// four vpdpbusd they were loaded twice, and loads, not
			// arithmetic, limited the kernel.
			ys := loadOctets(Mem{Base: p, Disp: po + 64*kk})
			for r := range 2 {
				w := dword[r](kk)
				for o := range 2 {
					dot(2*r+o, w, ys[o])
				}
			}
		})
		var bias [2]VecVirtual
		for o := range 2 {
			bias[o] = YMM()
			VMOVDQU(Mem{Base: p, Disp: po + panelSums + 32*o}, bias[o])
			VPSLLD(U8(k.biasShift), bias[o], bias[o])
		}
		for r := range 2 {
			dx := broadcastF16(Mem{Base: xs[r], Disp: xo})
			for o := range 2 {
				sm := sums[2*r+o]
				VPSUBD(bias[o], sm, sm)
				VCVTDQ2PS(sm, sm)
				d := YMM()
				VMULPS(Mem{Base: p, Disp: po + panelScales + 32*o}, dx, d)
				VFMADD231PS(sm, d, accs[r][o])
			}
		}
	}, stepper(xs, k.xStride, []Register{p}, panelBlock))
	o, stride := outArgs()
	storePanel(accs, o, stride)
	VZEROUPPER()
	RET()
}

// zeroPanel returns a panel kernel's zeroed accumulators, indexed
// [weight row][column octet] as storePanel takes them.
func zeroPanel() [2][2]VecVirtual {
	var accs [2][2]VecVirtual
	for r := range 2 {
		for o := range 2 {
			accs[r][o] = zeroY()
		}
	}
	return accs
}

// loadOctets loads the 64 bytes at m, one dword of each of the sixteen
// activation rows of a panel, as two ymm (rows 0-7 and 8-15).
func loadOctets(m Mem) [2]VecVirtual {
	var v [2]VecVirtual
	for o := range 2 {
		v[o] = YMM()
		VMOVDQU(m.Offset(32*o), v[o])
	}
	return v
}

// genGrids emits every shape of every Q8_0-family type.
func genGrids() {
	words1 = GLOBL("words1", RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		DATA(2*i, U16(1))
	}
	bytes80 = GLOBL("bytes80", RODATA|NOPTR)
	for i := 0; i < 32; i++ {
		DATA(i, U8(0x80))
	}
	kvaluesU8 = GLOBL("kvaluesU8", RODATA|NOPTR)
	for i := range 32 {
		DATA(i, U8(byte(int(block.IQ4NLValues[i%16])+128)))
	}
	for _, k := range q8Kinds {
		genQ8Dot(k, false, false, false)
		genQ8Dot(k, true, false, false)
		genQ8Dot(k, true, true, false)
		if k.nibblesMinus8 {
			genQ8Dot(k, true, true, true)
		}
		genQ8Quad(k, false)
		genQ8Quad(k, true)
		genQ8Tile(k, false)
		genQ8Tile(k, true)
	}
	for _, k := range panelKinds {
		genPanel(k, true)
	}
	for _, k := range panelKinds {
		genPanelZ(k, 2)
		genPanelZ(k, 4)
		genPanelZ4(k)
	}
	for _, k := range panelKKinds {
		genPanelK(k, true)
	}
	for _, k := range panelKKinds {
		genPanelKZ(k, 2)
		genPanelKZ(k, 4)
	}
	// The AVX2 byte panels (see byteDots), then the word panels.
	for _, k := range panelKinds {
		if k.avx2 == unsignedWeights {
			genPanel(k, false)
		}
	}
	for _, k := range panelKinds {
		if k.avx2 == unsignedWeights { // Q4_0
			genPanelWideAVX2(k)
		}
	}
	for _, per := range wordBlockSizes {
		genWordPanel(per)
	}
	for _, k := range wordKinds {
		genWiden(k)
	}
	for _, k := range panelKKinds {
		if k.avx2 == unsignedWeights {
			genPanelK(k, false)
		}
	}
}

// setSuffix names a panel kernel's instruction set.
func setSuffix(vnni bool) string {
	if vnni {
		return "VNNI"
	}
	return "AVX2"
}

// needs states in a VNNI kernel's doc comment what it needs beyond the AVX2
// set's AVX2, FMA and F16C.
func needs(vnni bool) {
	if vnni {
		Comment("Needs AVX512-VNNI and AVX512-VL besides AVX2, FMA and F16C.")
	}
}

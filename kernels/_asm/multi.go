package main

import (
	"fmt"

	"github.com/llqt/llqt/formats/block"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The block dots of the common weight types come in two shapes generated from
// one description: one activation row (returning float32) and four activation
// rows sharing each weight decode (storing four float32 into out). Every column
// runs the same float operations in the same order in both shapes, so the
// four-row kernel gives bit-identical results to four single calls.

// rowsMode makes the one-column generators emit the rows shape instead:
// func(x, y *byte, nb, rows int, out *float32) storing the dots of rows
// consecutive weight rows (nb blocks each, contiguous) with the one
// activation row y at out[0..rows). The per-row operations are those of the
// one-row kernel, so the results are bit-identical; the loop over rows saves
// a Go call and bounds checks per row in matrix-vector products.
var (
	rowsMode         bool
	rowsName         string
	rowsReg, rowsOut Register
)

// colArgs declares the signature and loads x, the per-column y pointers and nb.
func colArgs(name string, ncols int, doc string) (x Register, ys []Register, nb Register) {
	if rowsMode {
		TEXT(name, NOSPLIT, "func(x, y *byte, nb, rows int, out *float32)")
		Doc(name+" stores at out[r] the dot product of "+doc+",", "for the rows consecutive weight rows starting at x (r < rows, rows > 0).")
		x = Load(Param("x"), GP64())
		rowsReg = Load(Param("rows"), GP64())
		rowsOut = Load(Param("out"), GP64())
		rowsName = name
		Label(name + "_row")
		return x, []Register{Load(Param("y"), GP64())}, Load(Param("nb"), GP64())
	}
	if ncols == 1 {
		TEXT(name, NOSPLIT, "func(x, y *byte, nb int) float32")
		Doc(name + " returns the dot product of " + doc + ".")
	} else {
		TEXT(name, NOSPLIT, "func(x, y *byte, ystride, nb int, out *float32, outstride int)")
		Doc(name+" stores at out + c*outstride (in floats) the dot product of "+doc+",", "for the four activation rows at y + c*ystride (in bytes).")
	}
	x = Load(Param("x"), GP64())
	y := Load(Param("y"), GP64())
	ys = []Register{y}
	if ncols > 1 {
		stride := Load(Param("ystride"), GP64())
		for c := 1; c < ncols; c++ {
			yc := GP64()
			MOVQ(ys[c-1], yc)
			ADDQ(stride, yc)
			ys = append(ys, yc)
		}
	}
	nb = Load(Param("nb"), GP64())
	return x, ys, nb
}

// colReturn reduces each column's accumulator, adds the low float of
// adds[c] when given (the min terms of Q4_1 and Q5_1), and returns or
// stores it.
func colReturn(ncols int, accs []VecVirtual, adds ...VecVirtual) {
	if rowsMode {
		nextRow(hsum(accs[0]))
		return
	}
	if ncols == 1 {
		s := hsum(accs[0])
		if adds != nil {
			VADDSS(adds[0], s, s)
		}
		returnFloat(s)
		return
	}
	storeColumns(ncols, func(c int) Register {
		s := hsum(accs[c])
		if adds != nil {
			VADDSS(adds[c], s, s)
		}
		return s
	})
}

// nextRow ends one weight row of a rowsMode kernel: it stores the row's dot
// (lane 0 of s), moves out to the next float, and loops while rows remain.
func nextRow(s Register) {
	VMOVSS(s, Mem{Base: rowsOut})
	ADDQ(U8(4), rowsOut)
	DECQ(rowsReg)
	JNZ(LabelRef(rowsName + "_row"))
	VZEROUPPER()
	RET()
}

// returnFloat returns lane 0 of s as a one-column kernel's float32 result.
func returnFloat(s Register) {
	VZEROUPPER()
	Store(s, ReturnIndex(0))
	RET()
}

// storeColumns ends a several-column kernel: it stores column c's result
// (lane 0 of the register sum(c) returns, called just before the store) at
// out + c*outstride (in floats) and returns.
func storeColumns(ncols int, sum func(c int) Register) {
	out, stride := outArgs()
	for c := range ncols {
		s := sum(c)
		if c > 0 {
			ADDQ(stride, out)
		}
		VMOVSS(s, Mem{Base: out})
	}
	VZEROUPPER()
	RET()
}

// storeLanes ends a several-column kernel whose column c's result is lane c
// of acc: it stores lane c at out + c*outstride (in floats) and returns.
func storeLanes(ncols int, acc VecVirtual) {
	out, stride := outArgs()
	for c := range ncols {
		if c > 0 {
			ADDQ(stride, out)
			VEXTRACTPS(U8(c), acc, Mem{Base: out})
		} else {
			VMOVSS(acc, Mem{Base: out})
		}
	}
	VZEROUPPER()
	RET()
}

// outArgs loads the out and outstride arguments, the stride in bytes.
func outArgs() (out, stride Register) {
	out, stride = Load(Param("out"), GP64()), Load(Param("outstride"), GP64())
	SHLQ(U8(2), stride)
	return out, stride
}

// eachBlock emits a loop over nb blocks, one per iteration: body emits one
// block's work on the weight block at x and the activation blocks at ys,
// which then advance by xStride and yStride bytes. name prefixes the loop's
// labels.
func eachBlock(name string, x Register, xStride int, ys []Register, yStride int, nb Register, body func()) {
	Label(name + "_loop")
	TESTQ(nb, nb)
	JZ(LabelRef(name + "_done"))
	body()
	advance(x, xStride, ys, yStride, nb, 1)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
}

func advance(x Register, xStride int, ys []Register, yStride int, nb Register, blocks int) {
	ADDQ(U32(blocks*xStride), x)
	for _, y := range ys {
		ADDQ(U32(blocks*yStride), y)
	}
	SUBQ(U32(blocks), nb)
}

// prefetchDist is how far ahead of the block in use the K-quant and IQ4_XS
// dots prefetch the weight stream, in bytes (0: no prefetch instructions;
// PREFETCH_DIST=n when generating overrides it for experiments; the Q8_0
// family has its own, prefetchQ8Dist). On a Zen 4, 2 KiB ahead made no
// measurable difference for Q4_K decode; on a 5th-gen Xeon (model 207, 2
// threads), 1 KiB ahead raised llqt bench tg64 of a 1.1B-shape Q4_K_M from
// 17.9-19.7 to 26.7-26.9 t/s, and 4 KiB ahead then cut the decode step of
// the 1.1B-shape files (eval, 2 threads, two rounds) from 37.6/41.2 to
// 29.9/30.3 ms (Q4_K_M), 51.8/48.1 to 41.8/38.5 ms (Q6_K) and 40.8/38.3 to
// 36.1/36.2 ms (IQ4_XS); 16 KiB was no better. (The machine's L3 is 260
// MiB, so BenchmarkMatVecDRAM's 96 MiB matrices measured the L3, not DRAM.)
var prefetchDist = 4096

// prefetchBlock prefetches the cache lines of the block prefetchDist bytes
// after the one at x (size bytes).
func prefetchBlock(x Register, size int) {
	if prefetchDist == 0 {
		return
	}
	for off := 0; off < size; off += 64 {
		PREFETCHT0(Mem{Base: x, Disp: prefetchDist + off})
	}
}

func suffix(ncols int) string {
	if rowsMode {
		return "RowsAVX2"
	}
	if ncols == 1 {
		return "AVX2"
	}
	return fmt.Sprintf("x%dAVX2", ncols)
}

// q8Kind names a weight type whose blocks pair with Q8_0 activations.
type q8Kind struct {
	name    string
	xStride int
	doc     string
	// decode returns the 32 quants of the block at x+xo as signed bytes.
	decode func(x Register, xo int) VecVirtual
	// nibblesMinus8 says the quants are the block's nibbles minus 8
	// (Q4_0), which the many-rows kernels use.
	nibblesMinus8 bool
}

var q8Kinds = []q8Kind{
	{"dotQ8_0Q8_0", block.Q8_0Bytes, "Q8_0", func(x Register, xo int) VecVirtual {
		q := YMM()
		VMOVDQU(Mem{Base: x, Disp: xo + 2}, q)
		return q
	}, false},
	{"dotQ4_0Q8_0", block.Q4_0Bytes, "Q4_0", func(x Register, xo int) VecVirtual {
		q := nibbles32(Mem{Base: x, Disp: xo + 2})
		VPSUBB(bytes8, q, q)
		return q
	}, true},
	{"dotQ5_0Q8_0", block.Q5_0Bytes, "Q5_0", func(x Register, xo int) VecVirtual {
		q := nibbles32(Mem{Base: x, Disp: xo + 6})
		// Where the fifth bit is clear the value is nibble-16: set the top nibble.
		h := bitsToBytes(Mem{Base: x, Disp: xo + 2})
		VPANDN(maskF0, h, h)
		VPOR(h, q, q)
		return q
	}, false},
	{"dotIQ4NLQ8_0", block.IQ4_NLBytes, "IQ4_NL", func(x Register, xo int) VecVirtual {
		q, table := nibbles32(Mem{Base: x, Disp: xo + 2}), YMM()
		VMOVDQU(kvalues, table)
		VPSHUFB(q, table, q)
		return q
	}, false},
}

// genDotMinFamily emits Q4_1 or Q5_1 against Q8_1: Σ d·dy·Σq·y + m·s, with
// the m·s terms summed in a scalar accumulator added at the end.
func genDotMinFamily(q5 bool, ncols int) {
	name, xStride, qsOff, doc := "dotQ4_1Q8_1"+suffix(ncols), block.Q4_1Bytes, 4, "nb Q4_1 blocks at x and nb Q8_1 blocks at y"
	if q5 {
		name, xStride, qsOff, doc = "dotQ5_1Q8_1"+suffix(ncols), block.Q5_1Bytes, 8, "nb Q5_1 blocks at x and nb Q8_1 blocks at y"
	}
	x, ys, nb := colArgs(name, ncols, doc)
	ones := ones16()
	accs, accm := make([]VecVirtual, ncols), make([]VecVirtual, ncols)
	for c := range ncols {
		accs[c] = zeroY()
		accm[c] = zeroX()
	}
	eachBlock(name, x, xStride, ys, block.Q8_1Bytes, nb, func() {
		q := nibbles32(Mem{Base: x, Disp: qsOff})
		if q5 {
			h := bitsToBytes(Mem{Base: x, Disp: 4})
			VPAND(mask10, h, h)
			VPOR(h, q, q)
		}
		for c := range ncols {
			m := loadF16x1(Mem{Base: x, Disp: 2})
			sy := loadF16x1(Mem{Base: ys[c], Disp: 2})
			VFMADD231SS(sy, m, accm[c])
			p := YMM()
			VPMADDUBSW(Mem{Base: ys[c], Disp: 4}, q, p)
			VPMADDWD(ones, p, p)
			VCVTDQ2PS(p, p)
			d := broadcastF16(Mem{Base: ys[c]})
			dx := broadcastF16(Mem{Base: x})
			VMULPS(d, dx, d)
			VFMADD231PS(p, d, accs[c])
		}
	})
	colReturn(ncols, accs, accm...)
}

// genDotK45 emits Q4_K·Q8_K (q5=false) or Q5_K·Q8_K. Every shape of these
// two types (the dots, rows, four-column and panel kernels) computes the
// same float32 value for each output, from the block's exact integer sums:
//
//	isum_b = Σ_j sc_j · Σ_{i in run j} q_i·y_i     exact int32
//	msum_b = Σ_j m_j · (bsum_2j + bsum_2j+1)       exact int32
//	dot    = fma(f32(isum_b), f32(d_b)·dy_b, dot)
//	dot    = fma(-f32(msum_b), f32(dmin_b)·dy_b, dot), over the blocks in order
//
// so that a product does not depend on how it was cut into shapes, and the
// panel kernels (which hold sixteen outputs in the lanes of two registers)
// can be used for prompt batches.
func genDotK45(q5 bool, ncols int) {
	base, xStride, qsOff, doc := "dotQ4_KQ8_K", block.Q4_KBytes, 16, "nb Q4_K blocks at x and nb Q8_K blocks at y"
	if q5 {
		base, xStride, qsOff, doc = "dotQ5_KQ8_K", block.Q5_KBytes, 48, "nb Q5_K blocks at x and nb Q8_K blocks at y"
	}
	name := base + suffix(ncols)
	x, ys, nb := colArgs(name, ncols, doc)
	acc := zeroX() // lane c: column c's dot
	eachBlock(name, x, xStride, ys, block.Q8_KBytes, nb, func() {
		prefetchBlock(x, xStride)

		sc, mn := kScalesMins(Mem{Base: x, Disp: 4})
		VPMOVZXBW(mn, mn)
		// Σ m_j·(bsum pair j) in four lanes per column (vpmaddwd of the eight
		// pair sums with the eight mins).
		msums := make([]VecVirtual, ncols)
		for c := range ncols {
			bs, bsHi, m := YMM(), XMM(), YMM()
			VMOVDQU(Mem{Base: ys[c], Disp: 260}, bs)
			VEXTRACTI128(U8(1), bs, bsHi)
			VPHADDW(bsHi, bs.AsX(), bsHi)
			VPXOR(m, m, m) // a full write first, so the allocator sees m dead before
			VPMADDWD(bsHi, mn, m.AsX())
			msums[c] = m
		}
		var msum4 VecVirtual // ncols == 4: the four columns' msum_b
		if ncols == 4 {
			msum4 = foldLow(group4(func(c int) VecVirtual { return msums[c] }))
		}

		scales := YMM()
		VPXOR(scales, scales, scales)
		VPMOVZXBW(sc, scales.AsX())
		VINSERTI128(U8(1), scales.AsX(), scales, scales)
		sumi := make([]VecVirtual, ncols)
		for c := range ncols {
			sumi[c] = YMM()
			VPXOR(sumi[c], sumi[c], sumi[c])
		}
		for k := 0; k < 4; k++ {
			lo, hi := YMM(), YMM()
			splitNibbles(Mem{Base: x, Disp: qsOff + 32*k}, mask0F, lo, hi)
			if q5 {
				orQ5High(x, k, lo, hi)
			}
			for half, v := range []VecVirtual{lo, hi} {
				s := YMM()
				VPSHUFB(wordShuf.Offset(32*(2*k+half)), scales, s)
				for c := range ncols {
					t := YMM()
					VPMADDUBSW(Mem{Base: ys[c], Disp: 4 + 64*k + 32*half}, v, t)
					VPMADDWD(s, t, t)
					VPADDD(t, sumi[c], sumi[c])
				}
			}
		}
		if ncols == 1 {
			// [isum, msum] in lanes 0 and 1.
			t := XMM()
			VEXTRACTI128(U8(1), sumi[0], t)
			VPADDD(t, sumi[0].AsX(), t)
			VPHADDD(msums[0].AsX(), t, t) // [i01 i23 m01 m23]
			VPHADDD(t, t, t)              // [isum msum isum msum]
			VCVTDQ2PS(t, t)
			dy, d, dm := XMM(), XMM(), XMM()
			VMOVSS(Mem{Base: ys[0]}, dy)
			VMULSS(loadF16x1(Mem{Base: x}), dy, d)
			VMULSS(loadF16x1(Mem{Base: x, Disp: 2}), dy, dm)
			VFMADD231SS(t, d, acc)
			VMOVSHDUP(t, t)
			VFNMADD231SS(t, dm, acc)
		} else {
			isum4 := foldLow(group4(func(c int) VecVirtual { return sumi[c] })).AsX()
			VCVTDQ2PS(isum4, isum4)
			fm := msum4.AsX()
			VCVTDQ2PS(fm, fm)
			dy := gatherDy(ys)
			d, dm := XMM(), XMM()
			VMULPS(broadcastF16(Mem{Base: x}).AsX(), dy, d)
			VMULPS(broadcastF16(Mem{Base: x, Disp: 2}).AsX(), dy, dm)
			VFMADD231PS(isum4, d, acc)
			VFNMADD231PS(fm, dm, acc)
		}
	})
	laneReturn(ncols, acc)
}

// splitNibbles loads the 32 bytes at m and splits them into their low (lo)
// and high (hi) nibbles; mask holds 32 × 0x0f, in memory or a register.
// The caller allocates lo and hi: the dots and the panel unpacking, which
// share this, allocate them in different orders, and the generated
// register choice follows that order.
func splitNibbles(m Mem, mask Op, lo, hi VecVirtual) {
	VMOVDQU(m, hi)
	VPAND(mask, hi, lo)
	VPSRLW(U8(4), hi, hi)
	VPAND(mask, hi, hi)
}

// orQ5High completes the low-nibble quants of runs 2k (lo) and 2k+1 (hi)
// of the Q5_K block at x with their fifth bits: bit j of qh[l] (the 32
// bytes at x+16) is the fifth bit of element l of run j. The dots and the
// panel unpacking both need it.
func orQ5High(x Register, k int, lo, hi VecVirtual) {
	for half, v := range []VecVirtual{lo, hi} {
		j := 2*k + half
		t := YMM()
		VMOVDQU(Mem{Base: x, Disp: 16}, t) // qh
		if j <= 4 {
			VPSLLW(U8(4-j), t, t)
		} else {
			VPSRLW(U8(j-4), t, t)
		}
		VPAND(mask10, t, t)
		VPOR(t, v, v)
	}
}

// gatherDy returns the Q8_K scales (the float32 at each ys[c]) in the
// lanes of an xmm.
func gatherDy(ys []Register) VecVirtual {
	dy := XMM()
	VMOVSS(Mem{Base: ys[0]}, dy)
	for c := 1; c < len(ys); c++ {
		VINSERTPS(U8(c<<4), Mem{Base: ys[c]}, dy, dy)
	}
	return dy
}

// The constants the i-quant and ternary kernels share, emitted once.
var (
	sharedConsts bool
	// ksignRows: 128 rows of 8 bytes, byte j of row s −1 where bit j of
	// block.KSignsIQ2XS[s] is set (seven stored signs and the parity
	// eighth), else 1.
	ksignRows Mem
	bytes01   Mem // 32 × 0x01
)

func sharedConstants() {
	if sharedConsts {
		return
	}
	sharedConsts = true
	ksignRows = GLOBL("ksignRows", RODATA|NOPTR)
	for s, signs := range block.KSignsIQ2XS {
		for j := range 8 {
			v := byte(0x01)
			if signs>>j&1 != 0 {
				v = 0xff
			}
			DATA(8*s+j, U8(v))
		}
	}
	bytes01 = GLOBL("bytes01", RODATA|NOPTR)
	for i := range 32 {
		DATA(i, U8(1))
	}
}

// chainQ8K ends a block of the K-quant types with panel kernels (Q6_K,
// IQ4_XS): lane c of acc = fma(f32(isum_c), f32(d)·dy_c, lane c), where
// isum_c is the exact block sum, the total of sumi[c]'s eight int32 lanes,
// and d the weight block's half-precision scale at dm. Only block totals
// enter the float chain, so every shape gives the same bits.
func chainQ8K(dm Mem, ys []Register, sumi []VecVirtual, acc VecVirtual) {
	chainBlock(dm, ys, sumi, acc, true)
}

// chainQ8KRounded ends a block as chainQ8K does, but rounds the product
// before the sum (lane c of acc += (f32(d)·dy_c)·f32(isum_c)), as the Go
// references of the i-quants (ggml's generic dots) do.
func chainQ8KRounded(dm Mem, ys []Register, sumi []VecVirtual, acc VecVirtual) {
	chainBlock(dm, ys, sumi, acc, false)
}

func chainBlock(dm Mem, ys []Register, sumi []VecVirtual, acc VecVirtual, fused bool) {
	if len(sumi) == 1 {
		t := XMM()
		VEXTRACTI128(U8(1), sumi[0], t)
		VPADDD(t, sumi[0].AsX(), t)
		VPHADDD(t, t, t)
		VPHADDD(t, t, t)
		VCVTDQ2PS(t, t)
		dy, d := XMM(), XMM()
		VMOVSS(Mem{Base: ys[0]}, dy)
		VMULSS(loadF16x1(dm), dy, d)
		if fused {
			VFMADD231SS(t, d, acc)
		} else {
			VMULSS(d, t, t)
			VADDSS(t, acc, acc)
		}
		return
	}
	isum := foldLow(group4(func(c int) VecVirtual { return sumi[c] })).AsX()
	VCVTDQ2PS(isum, isum)
	d := XMM()
	VMULPS(broadcastF16(dm).AsX(), gatherDy(ys), d)
	if fused {
		VFMADD231PS(isum, d, acc)
	} else {
		VMULPS(d, isum, isum)
		VADDPS(isum, acc, acc)
	}
}

// laneReturn returns or stores the dots held one per lane of acc (lane c:
// column c), for the kernels whose columns accumulate in scalar chains.
func laneReturn(ncols int, acc VecVirtual) {
	if rowsMode {
		nextRow(acc)
		return
	}
	if ncols == 1 {
		returnFloat(acc)
		return
	}
	storeLanes(ncols, acc)
}

// genDotQ6K emits Q6_K·Q8_K.
func genDotQ6K(ncols int) {
	name := "dotQ6_KQ8_K" + suffix(ncols)
	superBlockDot(name, "nb Q6_K blocks at x and nb Q8_K blocks at y", ncols, block.Q6_KBytes, 208, true, func(x Register, ys []Register, _ []VecVirtual) []VecVirtual {
		prefetchBlock(x, block.Q6_KBytes)
		sc16 := YMM()
		VPMOVSXBW(Mem{Base: x, Disp: 192}, sc16)
		// The -32 offset of the quants, taken out once per column:
		// 32 * Σ_g scale_g * bsum_g, subtracted from the integer sum.
		sumi := make([]VecVirtual, ncols)
		for c := range ncols {
			sumi[c] = YMM()
			VPMADDWD(Mem{Base: ys[c], Disp: 260}, sc16, sumi[c])
			VPSLLD(U8(5), sumi[c], sumi[c])
			VPSUBD(sumi[c], zeroY(), sumi[c]) // start from -correction
		}
		for half := 0; half < 2; half++ {
			scl := YMM()
			VPERM2I128(U8(0x11*half), sc16, sc16, scl)
			for k := 0; k < 4; k++ {
				addScaledRun(q6Run(x, half, k), scl, k, half, ys, sumi)
			}
		}
		return sumi
	})
}

// q6Run returns run k (0-3) of half half of the Q6_K block at x: its 32
// quants u = q+32 in 0..63, the low nibbles from ql and bits 2k, 2k+1 of
// qh moved to bits 4 and 5.
func q6Run(x Register, half, k int) VecVirtual {
	q, t := YMM(), YMM()
	VMOVDQU(Mem{Base: x, Disp: 64*half + 32*(k&1)}, q)
	if k >= 2 {
		VPSRLW(U8(4), q, q)
	}
	VPAND(mask0F, q, q)
	VMOVDQU(Mem{Base: x, Disp: 128 + 32*half}, t)
	switch {
	case k < 2:
		VPSLLW(U8(4-2*k), t, t)
	case k == 3:
		VPSRLW(U8(2), t, t)
	}
	VPAND(mask30, t, t)
	VPOR(t, q, q)
	return q
}

func genMulti() {
	genGrids()
	genIQ2()
	for _, n := range []int{1, 4} {
		genDotMinFamily(false, n)
		genDotMinFamily(true, n)
		genDotK45(false, n)
		genDotK45(true, n)
		genDotQ6K(n)
		genDotQ2K(n)
		genDotQ3K(n)
		genDotIQ4XS(n)
		genDotIQ3XXS(n)
		genDotIQ3S(n)
	}
	rowsMode = true
	genDotK45(false, 1)
	genDotK45(true, 1)
	genDotQ6K(1)
	genDotIQ4XS(1)
	genDotIQ3XXS(1)
	genDotIQ3S(1)
	rowsMode = false
	genTileIQ4XS()
}

// addScaledRun adds to each sumi[c] the products of the 32 unsigned quants
// q of run j of half half (of a 256-element K-quant block) with the Q8_K
// activation quants of column c, byte pairs summed and each 16-element
// half of the run weighted by its int16 scale, which wordShuf2 mask j picks
// out of scl (the Q2_K, Q3_K and Q6_K kernels lay their scales out for it).
func addScaledRun(q, scl VecVirtual, j, half int, ys []Register, sumi []VecVirtual) {
	s := YMM()
	VPSHUFB(wordShuf2.Offset(32*j), scl, s)
	for c := range sumi {
		p := YMM()
		VPMADDUBSW(Mem{Base: ys[c], Disp: 4 + 128*half + 32*j}, q, p)
		VPMADDWD(s, p, p)
		VPADDD(p, sumi[c], sumi[c])
	}
}

// accumulateQ8K adds each column's integer block sum sumi[c], scaled by the
// weight block's half-precision d at dm times the Q8_K activation scale (the
// float32 at ys[c]), into accs[c]: the end of every K-quant block dot.
func accumulateQ8K(dm Mem, ys []Register, sumi, accs []VecVirtual) {
	dx := broadcastF16(dm)
	for c := range sumi {
		d := YMM()
		VBROADCASTSS(Mem{Base: ys[c]}, d)
		VMULPS(d, dx, d)
		VCVTDQ2PS(sumi[c], sumi[c])
		VFMADD231PS(sumi[c], d, accs[c])
	}
}

// genDotQ2K emits Q2_K·Q8_K: block_q2_K is scales[16], qs[64], d, dmin.
func genDotQ2K(ncols int) {
	name := "dotQ2_KQ8_K" + suffix(ncols)
	superBlockDot(name, "nb Q2_K blocks at x and nb Q8_K blocks at y", ncols, block.Q2_KBytes, 80, false, func(x Register, ys []Register, accs []VecVirtual) []VecVirtual {
		// Mins (high nibbles) against bsums: acc -= dmin*dy * Σ m_g bsum_g.
		{
			raw, mins := XMM(), YMM()
			VMOVDQU(Mem{Base: x}, raw)
			VPSRLW(U8(4), raw, raw)
			VPAND(mask0F.Offset(0), raw, raw)
			VPMOVZXBW(raw, mins)
			dminx := broadcastF16(Mem{Base: x, Disp: 82})
			for c := range ncols {
				dmin, m := YMM(), YMM()
				VBROADCASTSS(Mem{Base: ys[c]}, dmin)
				VMULPS(dmin, dminx, dmin)
				VPMADDWD(Mem{Base: ys[c], Disp: 260}, mins, m)
				VCVTDQ2PS(m, m)
				VFNMADD231PS(m, dmin, accs[c])
			}
		}
		scales, raw := YMM(), XMM()
		VMOVDQU(Mem{Base: x}, raw)
		VPAND(mask0F.Offset(0), raw, raw)
		VPMOVZXBW(raw, scales)
		sumi := make([]VecVirtual, ncols)
		for c := range ncols {
			sumi[c] = YMM()
			VPXOR(sumi[c], sumi[c], sumi[c])
		}
		twoBitRuns(x, 16, scales, ys, sumi, nil)
		return sumi
	})
}

// genDotQ3K emits Q3_K·Q8_K: block_q3_K is hmask[32], qs[64], scales[12], d.
func genDotQ3K(ncols int) {
	name := "dotQ3_KQ8_K" + suffix(ncols)
	superBlockDot(name, "nb Q3_K blocks at x and nb Q8_K blocks at y", ncols, block.Q3_KBytes, 108, false, func(x Register, ys []Register, accs []VecVirtual) []VecVirtual {
		// Unpack the 16 6-bit scales (ggml's kmask1/kmask2 shuffle), minus 32.
		a0, a1, tmp, t := GP64(), GP64(), GP64(), GP64()
		MOVL(Mem{Base: x, Disp: 96}, a0.As32())
		MOVL(Mem{Base: x, Disp: 100}, a1.As32())
		MOVL(Mem{Base: x, Disp: 104}, tmp.As32())
		part := func(src GPVirtual, srcShift, tmpShift int) GPVirtual {
			dst := GP64()
			MOVL(src.As32(), dst.As32())
			if srcShift > 0 {
				SHRL(U8(srcShift), dst.As32())
			}
			ANDL(U32(0x0f0f0f0f), dst.As32())
			MOVL(tmp.As32(), t.As32())
			if tmpShift > 0 {
				SHRL(U8(tmpShift), t.As32())
			}
			ANDL(U32(0x03030303), t.As32())
			SHLL(U8(4), t.As32())
			ORL(t.As32(), dst.As32())
			return dst
		}
		p0, p1 := part(a0, 0, 0), part(a1, 0, 2)
		p2, p3 := part(a0, 4, 4), part(a1, 4, 6)
		SHLQ(U8(32), p1)
		ORQ(p0, p1)
		SHLQ(U8(32), p3)
		ORQ(p2, p3)
		scx, scales := XMM(), YMM()
		VMOVQ(p1, scx) // VEX: a legacy-SSE MOVQ here costs a state transition on Intel
		VPINSRQ(U8(1), p3, scx, scx)
		VPMOVZXBW(scx, scales)
		VPSUBW(words32, scales, scales)

		// Quants are taken as q+4 in 0..7 (low bits | high bit << 2); the 4 comes
		// back out through the bsums: sumi starts at -4 * Σ_g scale_g * bsum_g.
		sumi := make([]VecVirtual, ncols)
		for c := range ncols {
			sumi[c] = YMM()
			VPMADDWD(Mem{Base: ys[c], Disp: 260}, scales, sumi[c])
			VPSLLD(U8(2), sumi[c], sumi[c])
			VPSUBD(sumi[c], zeroY(), sumi[c])
		}
		twoBitRuns(x, 32, scales, ys, sumi, func(v VecVirtual, half, j int) {
			h := YMM()
			VMOVDQU(Mem{Base: x}, h)
			b := 4*half + j // hmask bit, moved to bit 2
			switch {
			case b < 2:
				VPSLLW(U8(2-b), h, h)
			case b > 2:
				VPSRLW(U8(b-2), h, h)
			}
			VPAND(mask04, h, h)
			VPOR(h, v, v)
		})
		return sumi
	})
}

// genDotIQ4XS emits IQ4_XS·Q8_K: block_iq4_xs is d, scales_h, scales_l[4],
// qs[128]; sub-block j of 32 takes 16 bytes, low nibbles first.
func genDotIQ4XS(ncols int) {
	name := "dotIQ4XSQ8_K" + suffix(ncols)
	superBlockDot(name, "nb IQ4_XS blocks at x and nb Q8_K blocks at y", ncols, block.IQ4_XSBytes, 0, true, func(x Register, ys []Register, _ []VecVirtual) []VecVirtual {
		prefetchBlock(x, block.IQ4_XSBytes)
		scales := iq4XSScalePairs(x)
		sumi := make([]VecVirtual, ncols)
		for c := range ncols {
			sumi[c] = YMM()
			VPXOR(sumi[c], sumi[c], sumi[c])
		}
		for j := 0; j < 8; j++ {
			sc := YMM()
			VPBROADCASTD(scales.Offset(4*j), sc)

			q, ax := iq4XSQuants(x, j)
			addSignedRun(ax, q, sc, j, ys, sumi)
		}
		return sumi
	})
}

// iq4XSScale returns sub-block j's scale of an IQ4_XS block, ls − 32 where
// ls is nibble j of scales_l (in sl) with bits 2j, 2j+1 of scales_h (in sh)
// above it; t is a scratch register the caller may reuse. The dots and the
// panel unpacking both need it.
// iq4XSScalePairs computes the eight scales ls−32 of the IQ4_XS block at x
// together, each as the int16 pair (ls−32, ls−32), into a 32-byte stack
// slot it returns: lane j takes nibble j of scales_l (shifted left by
// 28−4j, then right by 28) and bits 2j, 2j+1 of scales_h (left by 30−2j,
// right by 30, left by 4). Done one scale at a time in general registers,
// this was a third of the four-row dot's instructions.
func iq4XSScalePairs(x Register) Mem {
	slot := AllocLocal(32)
	lo, hi := YMM(), YMM()
	VPBROADCASTD(Mem{Base: x, Disp: 4}, lo) // scales_l
	VPSLLVD(iq4ScaleShifts, lo, lo)
	VPSRLD(U8(28), lo, lo)
	VPBROADCASTD(Mem{Base: x, Disp: 2}, hi) // scales_h, then scales_l's first bytes
	VPSLLVD(iq4ScaleShifts.Offset(32), hi, hi)
	VPSRLD(U8(30), hi, hi)
	VPSLLD(U8(4), hi, hi)
	VPOR(hi, lo, lo)
	VPSUBD(dwords32, lo, lo)
	VPSLLD(U8(16), lo, hi) // (ls, 0)
	VPSRLD(U8(16), hi, lo) // (0, ls): ls as an int16
	VPOR(hi, lo, lo)
	VMOVDQU(lo, slot)
	return slot
}

// iq4XSQuants decodes sub-block j of the IQ4_XS block at x: its 32 table
// values q as signed bytes, and their magnitudes ax.
func iq4XSQuants(x Register, j int) (q, ax VecVirtual) {
	q = nibbles32(Mem{Base: x, Disp: 8 + 16*j})
	table := YMM()
	VMOVDQU(kvalues, table)
	VPSHUFB(q, table, q)
	ax = table
	VPSIGNB(q, q, ax)
	return q, ax
}

// iq4XSScale computes scale j of an IQ4_XS block, ls−32, from scales_h (sh)
// and scales_l (sl) in general registers (the panel kernels' unpacking).
func iq4XSScale(sh, sl Register, j int) (ls, t GPVirtual) {
	ls, t = GP32(), GP32()
	MOVL(sl, ls)
	moveBits(ls, 4*j, 0)
	ANDL(U32(0xf), ls)
	MOVL(sh, t)
	moveBits(t, 2*j, 4)
	ANDL(U32(0x30), t)
	ORL(t, ls)
	SUBL(U32(32), ls)
	return ls, t
}

// floatKind is a plain weight type multiplied with float32 activations.
type floatKind struct {
	name string
	size int // bytes per weight
	doc  string
	// load8 converts the 8 weights at m to float32 lanes.
	load8 func(m Mem) VecVirtual
	// load1 converts the weight at m into lane 0 of an xmm.
	load1 func(m Mem) VecVirtual
}

var floatKinds = []floatKind{
	{"matF32", 4, "F32", func(m Mem) VecVirtual {
		v := YMM()
		VMOVUPS(m, v)
		return v
	}, func(m Mem) VecVirtual {
		v := XMM()
		VMOVSS(m, v)
		return v
	}},
	{"matF16", 2, "F16", func(m Mem) VecVirtual {
		v := YMM()
		VCVTPH2PS(m, v)
		return v
	}, loadF16x1},
	{"matBF16", 2, "BF16", func(m Mem) VecVirtual {
		v := YMM()
		VPMOVZXWD(m, v)
		VPSLLD(U8(16), v, v)
		return v
	}, func(m Mem) VecVirtual {
		r, v := GP32(), XMM()
		MOVWLZX(m, r)
		SHLL(U8(16), r)
		VMOVD(r, v)
		return v
	}},
}

// genFloatFamily emits the MatMul dot of plain weights with float32
// activations: 16 elements per iteration into two accumulators per column,
// then 8 into the first, then a scalar tail added after the reduction.
func genFloatFamily(k floatKind, ncols int) {
	name := k.name + suffix(ncols)
	x, ys, n := colArgs(name, ncols, "n "+k.doc+" weights at x and n float32 activations at y")
	sums := floatSums(name, k, x, ys, n)
	if ncols == 1 {
		returnFloat(sums[0])
		return
	}
	storeColumns(ncols, func(c int) Register { return sums[c] })
}

// floatSums emits the dots of the n weights at x with the float32 rows at ys
// (advancing x and ys past them, and n to 0) and returns each row's sum in
// lane 0 of an xmm: two accumulators over alternate runs of 8, then one
// run of 8, then a scalar tail, summed as hsum(acc0+acc1) + tail.
func floatSums(name string, k floatKind, x Register, ys []Register, n Register) []Register {
	ncols := len(ys)
	acc0, acc1, tails := make([]VecVirtual, ncols), make([]VecVirtual, ncols), make([]VecVirtual, ncols)
	for c := range ncols {
		acc0[c], acc1[c] = zeroY(), zeroY()
		tails[c] = XMM()
		VXORPS(tails[c], tails[c], tails[c])
	}
	step := func(elems int) {
		ADDQ(U32(elems*k.size), x)
		for _, y := range ys {
			ADDQ(U32(elems*4), y)
		}
		SUBQ(U32(elems), n)
	}
	Label(name + "_loop16")
	CMPQ(n, Imm(16))
	JL(LabelRef(name + "_loop8"))
	for half, accs := range [][]VecVirtual{acc0, acc1} {
		w := k.load8(Mem{Base: x, Disp: 8 * half * k.size})
		for c := range ncols {
			VFMADD231PS(Mem{Base: ys[c], Disp: 32 * half}, w, accs[c])
		}
	}
	step(16)
	JMP(LabelRef(name + "_loop16"))
	Label(name + "_loop8")
	CMPQ(n, Imm(8))
	JL(LabelRef(name + "_tail"))
	w := k.load8(Mem{Base: x})
	for c := range ncols {
		VFMADD231PS(Mem{Base: ys[c]}, w, acc0[c])
	}
	step(8)
	Label(name + "_tail")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	w1 := k.load1(Mem{Base: x})
	for c := range ncols {
		VFMADD231SS(Mem{Base: ys[c]}, w1, tails[c])
	}
	step(1)
	JMP(LabelRef(name + "_tail"))
	Label(name + "_done")
	sums := make([]Register, ncols)
	for c := range ncols {
		VADDPS(acc1[c], acc0[c], acc0[c])
		sums[c] = hsum(acc0[c])
		VADDSS(tails[c], sums[c], sums[c])
	}
	return sums
}

// genFloatRows4 emits the many-rows shape of a plain weight type against
// four activation rows, func(x *byte, xstride int, y *byte, ystride, n,
// rows int, out *float32, outstride int): the four-row dot of each of the
// rows weight rows at x + r*xstride, stored at out + r + c*outstride (in
// floats). One call takes a whole task's rows (the attention scores are
// 64-element dots, where a call per row and four columns cost as much as
// its arithmetic). Each row's steps are the four-row dot's, so the bits
// are the dot's.
func genFloatRows4(k floatKind) {
	name := k.name + "x4RowsAVX2"
	TEXT(name, NOSPLIT, "func(x *byte, xstride int, y *byte, ystride, n, rows int, out *float32, outstride int)")
	Doc(name+" stores at out + r + c*outstride (in floats) the dot product of the n "+k.doc+" weights at x + r*xstride",
		"and the n float32 activations at y + c*ystride (in bytes), for r < rows (rows > 0) and c < 4.")
	x := Load(Param("x"), GP64())
	// After a row, x has advanced n*size bytes: next is xstride − n*size on.
	next := Load(Param("xstride"), GP64())
	ystride := Load(Param("ystride"), GP64())
	ys := offsets(Load(Param("y"), GP64()), ystride, 4)
	used := ystride // n*4: the bytes each activation row advances by
	Load(Param("n"), used)
	t := Load(Param("n"), GP64())
	IMUL3Q(U32(k.size), t, t)
	SUBQ(t, next)
	SHLQ(U8(2), used)
	rows := Load(Param("rows"), GP64())
	out := Load(Param("out"), GP64())
	stride := Load(Param("outstride"), GP64())
	SHLQ(U8(2), stride)
	Label(name + "_row")
	// n is reloaded each row (a register fewer: the 16 general registers
	// would otherwise run out into R14, which Go keeps for g).
	n := Load(Param("n"), GP64())
	sums := floatSums(name, k, x, ys, n)
	// out + c*stride: base, base+stride, base+2·stride, then (base+stride)+2·stride.
	VMOVSS(sums[0], Mem{Base: out})
	VMOVSS(sums[1], Mem{Base: out, Index: stride, Scale: 1})
	VMOVSS(sums[2], Mem{Base: out, Index: stride, Scale: 2})
	ADDQ(stride, out)
	VMOVSS(sums[3], Mem{Base: out, Index: stride, Scale: 2})
	SUBQ(stride, out)
	ADDQ(U8(4), out)
	ADDQ(next, x)
	for _, yc := range ys {
		SUBQ(used, yc)
	}
	DECQ(rows)
	JNZ(LabelRef(name + "_row"))
	VZEROUPPER()
	RET()
}

// genRoundF16 and genRoundBF16 emit the activation rounding for F16 and BF16
// weights: float32 in, float32 out, each value rounded through the narrow
// type (nearest even), so that a float32 product equals ggml's product of
// the two narrow values.
func genRoundF16() {
	genConvert("roundF16AVX2", "func(dst, src *float32, n int)", "stores float32(f16(src[i])) in dst[i] for i < n, rounding to nearest even.", "rf16", 4, 4, func(dst, src Register) {
		v, h := YMM(), XMM()
		VMOVUPS(Mem{Base: src}, v)
		VCVTPS2PH(U8(0), v, h)
		VCVTPH2PS(h, v)
		VMOVUPS(v, Mem{Base: dst})
	}, func(dst, src Register) {
		s := XMM()
		VMOVSS(Mem{Base: src}, s)
		VCVTPS2PH(U8(0), s, s)
		VCVTPH2PS(s, s)
		VMOVSS(s, Mem{Base: dst})
	})
}

func genMultiFloat() {
	for _, n := range []int{1, 4} {
		for _, k := range floatKinds {
			genFloatFamily(k, n)
		}
	}
	for _, k := range floatKinds {
		genFloatRows4(k)
	}
	genRoundF16()
}

// superBlockDot emits the dot of nb super-blocks of xStride bytes at x with
// Q8_K activations, for ncols activation rows (see colArgs): zeroed
// accumulators, a loop whose body returns each column's integer sums of one
// block (scaled by the f16 d at dOff and the activation scale), and the
// return. With totals (the types with panel kernels), each column's block
// sum is reduced to its exact total and chained in one fma per block
// (chainQ8K), so that every shape gives the same bits; otherwise the eight
// lanes accumulate apart (accumulateQ8K) and are summed at the end, and
// body may also subtract from accs (the mins of Q2_K).
func superBlockDot(name, doc string, ncols, xStride, dOff int, totals bool, body func(x Register, ys []Register, accs []VecVirtual) []VecVirtual) {
	x, ys, nb := colArgs(name, ncols, doc)
	var accs []VecVirtual
	acc := XMM() // with totals, lane c: column c's dot
	if totals {
		VXORPS(acc, acc, acc)
	} else {
		for range ncols {
			accs = append(accs, zeroY())
		}
	}
	eachBlock(name, x, xStride, ys, block.Q8_KBytes, nb, func() {
		sumi := body(x, ys, accs)
		if totals {
			chainQ8K(Mem{Base: x, Disp: dOff}, ys, sumi, acc)
		} else {
			accumulateQ8K(Mem{Base: x, Disp: dOff}, ys, sumi, accs)
		}
	})
	if totals {
		laneReturn(ncols, acc)
	} else {
		colReturn(ncols, accs)
	}
}

// twoBitRuns adds to sumi the scaled runs of the 2-bit quants of a Q2_K or
// Q3_K block (qs at qsOff): each 128 elements take 32 bytes, run j of 32 the
// bits 2j, 2j+1; more, when not nil, completes a run's quants (Q3_K's high
// bit) before it is multiplied.
func twoBitRuns(x Register, qsOff int, scales VecVirtual, ys []Register, sumi []VecVirtual, more func(v VecVirtual, half, j int)) {
	for half := 0; half < 2; half++ {
		scl := YMM()
		VPERM2I128(U8(0x11*half), scales, scales, scl)
		for j := 0; j < 4; j++ {
			v := YMM()
			VMOVDQU(Mem{Base: x, Disp: qsOff + 32*half}, v)
			if j > 0 {
				VPSRLW(U8(2*j), v, v)
			}
			VPAND(mask03, v, v)
			if more != nil {
				more(v, half, j)
			}
			addScaledRun(v, scl, j, half, ys, sumi)
		}
	}
}

// genTileIQ4XS emits the AVX2 4×4 tile of IQ4_XS against Q8_K (the tile
// shape's signature), as two passes of two weight rows against the four
// activation rows: each activation quant loaded then serves two weight rows,
// which halves the activation reads of the four-row dot (they come from L2
// in a prompt batch) and shares each load and reduction. Per weight row the
// steps are the four-row dot's (genDotIQ4XS), so the bits are the dot's.
func genTileIQ4XS() {
	name := "tileIQ4XSQ8_Kx4x4AVX2"
	TEXT(name, NOSPLIT, "func(x *byte, xstride int, y *byte, ystride, nb int, out *float32, outstride int)")
	Doc(name+" stores at out + r + c*outstride (in floats) the dot product of nb IQ4_XS blocks at x + r*xstride",
		"and nb Q8_K blocks at y + c*ystride, for r, c < 4.")
	for pass := range 2 {
		x0 := Load(Param("x"), GP64())
		xstride := Load(Param("xstride"), GP64())
		if pass == 1 {
			LEAQ(Mem{Base: x0, Index: xstride, Scale: 2}, x0)
		}
		xs := offsets(x0, xstride, 2)
		ys := offsets(Load(Param("y"), GP64()), Load(Param("ystride"), GP64()), 4)
		nb := Load(Param("nb"), GP64())
		// The two rows' float totals (lane c: column c) live on the stack:
		// the eight int32 sums and the step's operands take all sixteen
		// ymm registers.
		accs := AllocLocal(2 * 16)
		z := XMM()
		VXORPS(z, z, z)
		VMOVUPS(z, accs)
		VMOVUPS(z, accs.Offset(16))
		label := fmt.Sprintf("%s_pass%d", name, pass)
		Label(label)
		TESTQ(nb, nb)
		JZ(LabelRef(label + "_done"))
		var scales [2]Mem
		var sumi [2][]VecVirtual
		for r := range 2 {
			prefetchBlock(xs[r], block.IQ4_XSBytes)
			scales[r] = iq4XSScalePairs(xs[r])
			for range 4 {
				s := YMM()
				VPXOR(s, s, s)
				sumi[r] = append(sumi[r], s)
			}
		}
		for j := range 8 {
			var q, ax, sc [2]VecVirtual
			for r := range 2 {
				sc[r] = YMM()
				VPBROADCASTD(scales[r].Offset(4*j), sc[r])
				q[r], ax[r] = iq4XSQuants(xs[r], j)
			}
			for c := range 4 {
				yv := YMM()
				VMOVDQU(Mem{Base: ys[c], Disp: 4 + 32*j}, yv)
				for r := range 2 {
					t := YMM()
					VPSIGNB(q[r], yv, t)
					VPMADDUBSW(t, ax[r], t)
					VPMADDWD(sc[r], t, t)
					VPADDD(t, sumi[r][c], sumi[r][c])
				}
			}
		}
		for r := range 2 {
			a := XMM()
			VMOVUPS(accs.Offset(16*r), a)
			chainQ8K(Mem{Base: xs[r]}, ys, sumi[r], a)
			VMOVUPS(a, accs.Offset(16*r))
		}
		stepper(xs, block.IQ4_XSBytes, ys, block.Q8_KBytes)(1)
		DECQ(nb)
		JMP(LabelRef(label))
		Label(label + "_done")
		o, stride := outArgs()
		for r := range 2 {
			p := GP64()
			LEAQ(Mem{Base: o, Disp: 4 * (2*pass + r)}, p)
			a := XMM()
			VMOVUPS(accs.Offset(16*r), a)
			for c := range 4 {
				if c > 0 {
					ADDQ(stride, p)
				}
				VEXTRACTPS(U8(c), a, Mem{Base: p})
			}
		}
	}
	VZEROUPPER()
	RET()
}

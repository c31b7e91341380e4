package main

import (
	"github.com/llqt/llqt/formats/block"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The ternary dots (TQ1_0, TQ2_0 against Q8_K). Both decode a block into
// eight runs of 32 unsigned codes u = t+1 in 0..2 (run k: elements
// 32k..32k+31, the order of the Q8_K quants), multiply them with the
// activation quants by vpmaddubsw into int16 sums (8 runs × 2 × 2 × 128
// stay far inside int16), and take the +1 back out through the Q8_K
// bsums. The block's exact integer sum then enters the float chain as the
// Go reference adds it: acc += f32(isum) · (d·dy), a multiply and an add
// (no fma), so that every shape gives the Go reference's bits.

var (
	ternaryConsts bool
	tqMaskF8      Mem // 32 × 0xf8
)

func ternaryConstants() {
	if ternaryConsts {
		return
	}
	ternaryConsts = true
	fill := func(name string, v byte) Mem {
		m := GLOBL(name, RODATA|NOPTR)
		for i := 0; i < 32; i++ {
			DATA(i, U8(v))
		}
		return m
	}
	sharedConstants()
	tqMaskF8 = fill("tqMaskF8", 0xf8)
}

// times3 returns the bytes of v times 3, mod 256.
func times3(v VecVirtual) VecVirtual {
	t := YMM()
	VPADDB(v, v, t)
	VPADDB(v, t, t)
	return t
}

// times9 returns the bytes of v times 9, mod 256: (v<<3 within each byte)
// plus v.
func times9(v VecVirtual) VecVirtual {
	t := YMM()
	VPSLLW(U8(3), v, t)
	VPAND(tqMaskF8, t, t)
	VPADDB(v, t, t)
	return t
}

// topTrit turns each byte q of v into ⌊3q/256⌋, the leading trit of a
// packed TQ1_0 byte scaled by its power of three: with q' = q−1 (0 for
// q = 0), avg(q', avg(q', 0)) = ⌊3q/4⌋, whose top two bits are the trit.
// It returns a new register and leaves v as it was.
func topTrit(v, zero VecVirtual) VecVirtual {
	q, h := YMM(), YMM()
	VPSUBUSB(bytes01, v, q)
	VPAVGB(zero, q, h)
	VPAVGB(h, q, q)
	VPSRLW(U8(6), q, q)
	VPAND(mask03, q, q)
	return q
}

// ternaryRuns calls use(k, u) with the codes of run k of the block at x,
// k = 0..7 in order; u may be overwritten by use.
type ternaryRuns func(x Register, use func(k int, u VecVirtual))

// tq2Runs: run 4·half+j is bits 2j, 2j+1 of qs[32·half .. 32·half+31].
func tq2Runs(x Register, use func(k int, u VecVirtual)) {
	for half := 0; half < 2; half++ {
		for j := 0; j < 4; j++ {
			u := YMM()
			VMOVDQU(Mem{Base: x, Disp: 32 * half}, u)
			if j > 0 {
				VPSRLW(U8(2*j), u, u)
			}
			VPAND(mask03, u, u)
			use(4*half+j, u)
		}
	}
}

// tq1Runs: runs 0-4 are trits 0-4 of qs[0..31]; runs 5-7 pair trits of
// qs[32..47] (5: trits 0|1, 6: 2|3, 7: 4 | the four trits of each qh byte,
// elements 240+4n+j from trit n of qh[j]). Trit n of a byte b is the
// leading trit of b·3^n mod 256.
func tq1Runs(x Register, use func(k int, u VecVirtual)) {
	zero := zeroY()
	lead := func(k int, v VecVirtual) { use(k, topTrit(v, zero)) }

	// qs[0..31]: powers 1, 3, 9, 27, 81.
	p1 := YMM()
	VMOVDQU(Mem{Base: x}, p1)
	lead(0, p1)
	p3 := times3(p1)
	lead(1, p3)
	p9 := times9(p1)
	lead(2, p9)
	lead(3, times9(p3))
	lead(4, times9(p9))

	// qs[32..47] in both lanes, and the qh dword in all four of an xmm
	// scaled per dword by 1, 3, 9, 27 (trit n of qh[j] lands in byte 4n+j).
	r1 := YMM()
	VBROADCASTI128(Mem{Base: x, Disp: 32}, r1)
	r3, r9 := times3(r1), times9(r1)
	h1 := YMM()
	VPBROADCASTD(Mem{Base: x, Disp: 48}, h1)
	h3, h9 := times3(h1), times9(h1)
	h27 := times9(h3)
	VPBLENDD(U8(0b0010), h3, h1, h1)
	VPBLENDD(U8(0b0100), h9, h1, h1)
	VPBLENDD(U8(0b1000), h27, h1, h1)

	v := YMM()
	VPBLENDD(U8(0xf0), r3, r1, v) // powers 1 | 3
	lead(5, v)
	r27 := times9(r3)
	VPBLENDD(U8(0xf0), r27, r9, v) // 9 | 27
	lead(6, v)
	r81 := times9(r9)
	VINSERTI128(U8(1), h1.AsX(), r81, v) // 81 | qh
	lead(7, v)
}

// genDotTernary emits the dot of nb blocks of a ternary format with Q8_K
// activations for ncols activation rows (or, in rowsMode, many weight
// rows); d is the block's fp16 scale at dOff.
func genDotTernary(name, doc string, ncols, xStride, dOff int, runs ternaryRuns) {
	ternaryConstants()
	x, ys, nb := colArgs(name, ncols, doc)
	acc := zeroX() // lane c: column c's dot
	eachBlock(name, x, xStride, ys, block.Q8_KBytes, nb, func() {
		prefetchBlock(x, xStride)
		s16 := make([]VecVirtual, ncols)
		for c := range ncols {
			s16[c] = zeroY()
		}
		runs(x, func(k int, u VecVirtual) {
			for c := range ncols {
				p := YMM()
				VPMADDUBSW(Mem{Base: ys[c], Disp: 4 + 32*k}, u, p)
				VPADDW(p, s16[c], s16[c])
			}
		})
		// isum = Σ u·y − Σ y, the second from the sixteen bsums.
		sumi := make([]VecVirtual, ncols)
		for c := range ncols {
			b := YMM()
			VPMADDWD(words1, s16[c], s16[c])
			VMOVDQU(Mem{Base: ys[c], Disp: 4 + block.QK_K}, b)
			VPMADDWD(words1, b, b)
			VPSUBD(b, s16[c], s16[c])
			sumi[c] = s16[c]
		}
		chainMulAdd(broadcastF16(Mem{Base: x, Disp: dOff}).AsX(), ys, sumi, acc, nil)
	})
	laneReturn(ncols, acc)
}

// chainMulAdd adds to lane c of acc the exact total of sumi[c]'s eight
// int32 lanes, converted to float32 and multiplied by eighth when given (an
// xmm holding 0.125: the exact sums of the IQ1 dots count eighths), times
// dx·dy_c, rounded after each multiply and after the add, as the Go
// reference does; dx is an xmm holding the weight block's scale in every
// lane.
func chainMulAdd(dx Register, ys []Register, sumi []VecVirtual, acc VecVirtual, eighth VecVirtual) {
	if len(sumi) == 1 {
		isum, d := XMM(), XMM()
		VEXTRACTI128(U8(1), sumi[0], isum)
		VPADDD(isum, sumi[0].AsX(), isum)
		VPHADDD(isum, isum, isum)
		VPHADDD(isum, isum, isum)
		VCVTDQ2PS(isum, isum)
		if eighth != nil {
			VMULSS(eighth, isum, isum)
		}
		VMOVSS(Mem{Base: ys[0]}, d)
		VMULSS(dx, d, d)
		VMULSS(d, isum, isum)
		VADDSS(isum, acc, acc)
		return
	}
	isum := foldLow(group4(func(c int) VecVirtual { return sumi[c] })).AsX()
	VCVTDQ2PS(isum, isum)
	if eighth != nil {
		VMULPS(eighth, isum, isum)
	}
	d := XMM()
	VMULPS(dx, gatherDy(ys), d)
	VMULPS(d, isum, isum)
	VADDPS(isum, acc, acc)
}

func genTernary() {
	for _, n := range []int{1, 4} {
		genDotTernary("dotTQ1_0Q8_K"+suffix(n), "nb TQ1_0 blocks at x and nb Q8_K blocks at y", n, block.TQ1_0Bytes, block.TQ1_0DOff, tq1Runs)
		genDotTernary("dotTQ2_0Q8_K"+suffix(n), "nb TQ2_0 blocks at x and nb Q8_K blocks at y", n, block.TQ2_0Bytes, block.TQ2_0DOff, tq2Runs)
	}
	rowsMode = true
	genDotTernary("dotTQ1_0Q8_K"+suffix(1), "nb TQ1_0 blocks at x and nb Q8_K blocks at y", 1, block.TQ1_0Bytes, block.TQ1_0DOff, tq1Runs)
	genDotTernary("dotTQ2_0Q8_K"+suffix(1), "nb TQ2_0 blocks at x and nb Q8_K blocks at y", 1, block.TQ2_0Bytes, block.TQ2_0DOff, tq2Runs)
	rowsMode = false
}

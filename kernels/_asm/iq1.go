package main

import (
	"github.com/llqt/llqt/formats/block"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The 1-bit dots (IQ1_S, IQ1_M against Q8_K). ggml's sum per block is
// d·dy·(Σ ls·g·y + δ·Σ ls·s·y) with grid values g in {-1, 0, 1}, group
// shifts s = ±1 and δ = 1/8. Both integer sums are exact and below 2^21,
// so the kernels form T = Σ ls·(8g+s)·y in one pass, byte weights 8g+s in
// {±1, ±7, ±9} (the sign trick of vpmaddubsw, with |8g+s| ≤ 9 and |y| ≤ 127,
// keeps the byte-pair sums inside int16), and T/8 is the float32 that
// f32(Σ₁) + δ·f32(Σ₂) rounds to: the same bits as the Go reference.

var (
	iq1Consts     bool
	iq1sGrid      Mem // IQ1SGrid: 2048 × 8 signed bytes
	iq1Eighth     Mem // float32 0.125
	iq1mShiftBits Mem // IQ1_M: per group of 8 bytes, the shift bit of its qh byte (0x08 or 0x80)
	iq1mQhBytes   Mem // IQ1_M: vpshufb control moving qh byte 0 to groups 0, 1 and byte 1 to groups 2, 3
)

func iq1Constants() {
	if iq1Consts {
		return
	}
	iq1Consts = true
	sharedConstants()
	iq1sGrid = GLOBL("iq1sGrid", RODATA|NOPTR)
	for i, v := range block.IQ1SGrid {
		DATA(8*i, U64(v))
	}
	iq1Eighth = GLOBL("iq1Eighth", RODATA|NOPTR)
	DATA(0, F32(0.125))
	iq1mShiftBits = GLOBL("iq1mShiftBits", RODATA|NOPTR)
	for i := 0; i < 32; i++ {
		bit := byte(0x08)
		if i/8%2 == 1 {
			bit = 0x80
		}
		DATA(i, U8(bit))
	}
	// Each 128-bit lane holds the broadcast qh word: groups 0, 1 (the low
	// lane) read its byte 0, groups 2, 3 (the high lane) its byte 1.
	iq1mQhBytes = GLOBL("iq1mQhBytes", RODATA|NOPTR)
	for i := 0; i < 32; i++ {
		DATA(i, U8(byte(i/16)))
	}
}

// gridRun returns the 32 signed grid bytes of four groups whose 11-bit
// indices idx(l) (l = 0..3) computes into a general register.
func gridRun(tbl Register, idx func(l int) Register) VecVirtual {
	lo, hi := XMM(), XMM()
	VMOVQ(Mem{Base: tbl, Index: idx(0), Scale: 8}, lo)
	VPINSRQ(U8(1), Mem{Base: tbl, Index: idx(1), Scale: 8}, lo, lo)
	VMOVQ(Mem{Base: tbl, Index: idx(2), Scale: 8}, hi)
	VPINSRQ(U8(1), Mem{Base: tbl, Index: idx(3), Scale: 8}, hi, hi)
	g := YMM()
	VINSERTI128(U8(1), hi, lo.AsY(), g)
	return g
}

// iq1GridIndex returns the 11-bit grid index of one group of eight: its
// low byte at lo and its three high bits at bit hiBit of qh. IQ1_S and IQ1_M
// differ only in where those bits sit.
func iq1GridIndex(lo Mem, qh Register, hiBit int) Register {
	i, h := GP64(), GP32()
	MOVBQZX(lo, i)
	MOVL(qh, h)
	moveBits(h, hiBit, 8)
	ANDL(U32(0x700), h)
	ORQ(h.As64(), i)
	return i
}

// times8 returns the bytes of v times 8 (v in {-1, 0, 1}: no carries).
func times8(v VecVirtual) VecVirtual {
	t := YMM()
	VPADDB(v, v, t)
	VPADDB(t, t, t)
	VPADDB(t, t, t)
	return t
}

// addWeightedRun adds to each sumi[c] Σ ls·w·y over the 32 elements whose
// byte weights are w (|w| ≤ 9) against the Q8_K quants at ys[c]+yOff,
// with the int16 scales ls of each element's byte pair in scl.
func addWeightedRun(w, scl VecVirtual, ys []Register, yOff int, sumi []VecVirtual) {
	aw := YMM()
	VPSIGNB(w, w, aw)
	for c := range sumi {
		p := YMM()
		VMOVDQU(Mem{Base: ys[c], Disp: yOff}, p)
		VPSIGNB(w, p, p)
		VPMADDUBSW(p, aw, p)
		VPMADDWD(scl, p, p)
		VPADDD(p, sumi[c], sumi[c])
	}
}

// iq1Dot emits the block loop the IQ1 dots share: per block of blockBytes
// at x, body fills the ncols zeroed int32 sums from the grid table at tbl
// and returns the block's scale d in every lane of an XMM; the block then
// enters acc as chainMulAdd does, with the grid's factor 1/8.
func iq1Dot(name string, ncols, blockBytes int, doc string, body func(x, tbl Register, ys []Register, sumi []VecVirtual) Register) {
	iq1Constants()
	x, ys, nb := colArgs(name, ncols, doc)
	tbl := GP64()
	LEAQ(iq1sGrid, tbl)
	acc := zeroX()
	eachBlock(name, x, blockBytes, ys, block.Q8_KBytes, nb, func() {
		prefetchBlock(x, blockBytes)
		sumi := make([]VecVirtual, ncols)
		for c := range ncols {
			sumi[c] = zeroY()
		}
		d := body(x, tbl, ys, sumi)
		eighth := XMM()
		VBROADCASTSS(iq1Eighth, eighth)
		chainMulAdd(d, ys, sumi, acc, eighth)
	})
	laneReturn(ncols, acc)
}

// genDotIQ1S emits IQ1_S·Q8_K: block_iq1_s is d, qs[32], qh[8] (u16).
func genDotIQ1S(ncols int) {
	iq1Dot("dotIQ1_SQ8_K"+suffix(ncols), ncols, block.IQ1_SBytes, "nb IQ1_S blocks at x and nb Q8_K blocks at y", iq1SBlock)
}

func iq1SBlock(x, tbl Register, ys []Register, sumi []VecVirtual) Register {
	for ib := 0; ib < 8; ib++ {
		qh := GP32()
		MOVWLZX(Mem{Base: x, Disp: 34 + 2*ib}, qh)
		g := gridRun(tbl, func(l int) Register {
			return iq1GridIndex(Mem{Base: x, Disp: 2 + 4*ib + l}, qh, 3*l)
		})
		w := times8(g)
		// The shift s = ±1 (bit 15 of qh set: −1) added to every byte.
		s, sx, sy := GP32(), XMM(), YMM()
		MOVL(qh, s)
		SHRL(U8(15), s)
		NEGL(s)
		ADDL(s, s)
		INCL(s) // 1 − 2·bit
		VMOVD(s, sx)
		VPBROADCASTB(sx, sy)
		VPADDB(sy, w, w)
		// ls = 2·(qh>>12 & 7) + 1 in every word.
		ls, lx, scl := GP32(), XMM(), YMM()
		MOVL(qh, ls)
		SHRL(U8(12), ls)
		ANDL(U32(7), ls)
		LEAL(Mem{Base: ls, Index: ls, Scale: 1, Disp: 1}, ls)
		VMOVD(ls, lx)
		VPBROADCASTW(lx, scl)
		addWeightedRun(w, scl, ys, 4+32*ib, sumi)
	}
	return broadcastF16(Mem{Base: x}).AsX()
}

// genDotIQ1M emits IQ1_M·Q8_K: block_iq1_m is qs[32], qh[16], scales[8]
// (four u16 words holding the 3-bit sub-block scales and, in their top
// nibbles, the fp16 block scale).
func genDotIQ1M(ncols int) {
	iq1Dot("dotIQ1_MQ8_K"+suffix(ncols), ncols, block.IQ1_MBytes, "nb IQ1_M blocks at x and nb Q8_K blocks at y", iq1MBlock)
}

func iq1MBlock(x, tbl Register, ys []Register, sumi []VecVirtual) Register {
	for ib := 0; ib < 8; ib++ { // runs of 32: sub-blocks 2ib, 2ib+1 of 16
		qh := GP32()
		MOVWLZX(Mem{Base: x, Disp: 32 + 2*ib}, qh) // qh[2ib] | qh[2ib+1]<<8
		// Group l's high index bits are bits 4l..4l+2 of the word.
		g := gridRun(tbl, func(l int) Register {
			return iq1GridIndex(Mem{Base: x, Disp: 4*ib + l}, qh, 4*l)
		})
		w := times8(g)
		// Shift bytes: group l's shift bit is bit 3 (l even) or 7 of qh
		// byte l/2; s = 1 − 2·bit, added to the group's bytes.
		hx, hb := XMM(), YMM()
		VMOVD(qh, hx)
		VPBROADCASTW(hx, hb)
		VPSHUFB(iq1mQhBytes, hb, hb)
		VPAND(iq1mShiftBits, hb, hb)
		zero := zeroY()
		VPCMPEQB(zero, hb, hb) // 0xff where the bit is clear (s = +1)
		VPADDB(hb, hb, hb)     // -2 (clear) or 0 (set)
		VPSUBB(hb, w, w)
		VPSUBB(bytes01, w, w) // w + 2 − 1 = 8g + 1 (clear), 8g − 1 (set)
		// Scales of sub-blocks 2ib (low lane) and 2ib+1 (high lane):
		// 2·(word>>3j & 7) + 1 for j = 2ib%4, 2ib%4+1 of word ib/2.
		word := GP32()
		MOVWLZX(Mem{Base: x, Disp: 48 + 2*(ib/2)}, word)
		scl := YMM()
		halves := make([]VecVirtual, 2)
		for k := 0; k < 2; k++ {
			ls, lx := GP32(), XMM()
			MOVL(word, ls)
			if sh := 3 * (2*ib%4 + k); sh > 0 {
				SHRL(U8(sh), ls)
			}
			ANDL(U32(7), ls)
			LEAL(Mem{Base: ls, Index: ls, Scale: 1, Disp: 1}, ls)
			VMOVD(ls, lx)
			VPBROADCASTW(lx, lx)
			halves[k] = lx
		}
		VINSERTI128(U8(1), halves[1], halves[0].AsY(), scl)
		addWeightedRun(w, scl, ys, 4+32*ib, sumi)
	}
	// The fp16 scale: the top nibbles of the four words, word i giving
	// bits 4i..4i+3.
	sc, t := GP32(), GP32()
	MOVWLZX(Mem{Base: x, Disp: 48}, sc)
	SHRL(U8(12), sc)
	for i := 1; i < 4; i++ {
		MOVWLZX(Mem{Base: x, Disp: 48 + 2*i}, t)
		if s := 12 - 4*i; s > 0 {
			SHRL(U8(s), t)
		}
		ANDL(U32(0xf<<(4*i)), t)
		ORL(t, sc)
	}
	dx := XMM()
	VMOVD(sc, dx)
	VPBROADCASTW(dx, dx)
	VCVTPH2PS(dx, dx)
	return dx
}

func genIQ1() {
	for _, n := range []int{1, 4} {
		genDotIQ1S(n)
		genDotIQ1M(n)
	}
	rowsMode = true
	genDotIQ1S(1)
	genDotIQ1M(1)
	rowsMode = false
}

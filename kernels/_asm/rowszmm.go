package main

import (
	"github.com/llqt/llqt/formats/block"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Word permutations for the zmm quads of q8QuadsZ: each puts at word 4b+g
// (b the block of a quad, g the weight row of four) one half-precision
// scale, so that VCVTPH2PS gives the sixteen floats in the lanes of the
// transposed block sums.
var (
	// permDX01 takes the scale of block b (word 9b of the row's first 64
	// bytes, the block being 18 bytes) of row 0 from the first table and
	// of row 1 from the second, at words 4b and 4b+1.
	permDX01 Mem
	// permDX23 does the same for rows 2 and 3, at words 4b+2 and 4b+3.
	permDX23 Mem
	// permDXMerge takes words 4b, 4b+1 from the first table and 4b+2,
	// 4b+3 from the second.
	permDXMerge Mem
	// permDY puts the activation scale of block b (word 17b of the quad's
	// 136 bytes, loaded as two 64-byte tables) at words 4b..4b+3.
	permDY Mem
)

func rowsZConstants() {
	table := func(name string, word func(j int) int) Mem {
		m := GLOBL(name, RODATA|NOPTR)
		for j := range 32 {
			DATA(2*j, U16(uint16(word(j))))
		}
		return m
	}
	permDX01 = table("permDX01", func(j int) int {
		b, g := j/4%4, j%4
		if g == 1 {
			return 32 + 9*b
		}
		return 9 * b
	})
	permDX23 = table("permDX23", func(j int) int {
		b, g := j/4%4, j%4
		if g == 3 {
			return 32 + 9*b
		}
		return 9 * b
	})
	permDXMerge = table("permDXMerge", func(j int) int {
		if j%4 >= 2 {
			return 32 + j
		}
		return j
	})
	permDY = table("permDY", func(j int) int {
		return 17 * (j / 4 % 4) // words 34 and 51 are words 2 and 19 of the second table
	})
}

// q8QuadsZ emits the zmm quad loop of the Q4_0 many-rows kernel: while nb ≥
// 4, the four weight rows at xs times four blocks of the activation row at
// y, added to the lanes of acc (lane r: row r), then xs, y and nb advanced
// past the quad. A zmm holds one row's four blocks, block b in 128-bit lane
// b; vpdpbusd forms their nibble sums against the activations arranged the
// same way (8·Σy taken off with them), a transposition of the four rows
// leaves in lane b the four rows' exact block sums, and four xmm fused
// multiply-adds add the blocks in order. Each lane's steps are the single
// dot's, block by block, so the bits stay the dot's; only the reductions,
// the scale gathering and the activation loads are shared by more weights
// than in the ymm loop, which spent four times as many instructions per
// block on them.
func q8QuadsZ(k q8Kind, name string, xs []Register, y, nb Register, acc VecVirtual) {
	if !k.nibblesMinus8 {
		panic("q8QuadsZ: " + k.name + " is not nibbles minus 8")
	}
	mask, eights := ZMM(), ZMM()
	zmmWidth.loadConst(mask0F, mask)
	zmmWidth.loadConst(bytes8, eights)
	idx01, idx23, idxMerge, idxDY := ZMM(), ZMM(), ZMM(), ZMM()
	VMOVDQU64(permDX01, idx01)
	VMOVDQU64(permDX23, idx23)
	VMOVDQU64(permDXMerge, idxMerge)
	VMOVDQU64(permDY, idxDY)
	zero := ZMM()
	VPXORD(zero, zero, zero)

	Label(name + "_r4quad")
	CMPQ(nb, Imm(4))
	JL(LabelRef(name + "_r4block"))
	for _, xr := range xs {
		prefetchQ8(xr, 4*k.xStride)
	}
	// The activations: lane b the first (ylo) and second (yhi) 16 quants
	// of block b; bias lane b: four partial sums of 8·y over the block.
	ylo, yhi := ZMM(), ZMM()
	VBROADCASTI32X4(Mem{Base: y, Disp: 2}, ylo)
	VBROADCASTI32X4(Mem{Base: y, Disp: 18}, yhi)
	for b := 1; b < 4; b++ {
		VINSERTI32X4(U8(b), Mem{Base: y, Disp: b*block.Q8_0Bytes + 2}, ylo, ylo)
		VINSERTI32X4(U8(b), Mem{Base: y, Disp: b*block.Q8_0Bytes + 18}, yhi, yhi)
	}
	bias := ZMM()
	VMOVDQA64(zero, bias)
	VPDPBUSD(ylo, eights, bias)
	VPDPBUSD(yhi, eights, bias)
	sums := make([]VecVirtual, 4)
	for g, xr := range xs {
		q, lo, hi := ZMM(), ZMM(), ZMM()
		VBROADCASTI32X4(Mem{Base: xr, Disp: 2}, q)
		for b := 1; b < 4; b++ {
			VINSERTI32X4(U8(b), Mem{Base: xr, Disp: b*k.xStride + 2}, q, q)
		}
		VPANDD(mask, q, lo)
		VPSRLW(U8(4), q, hi)
		VPANDD(mask, hi, hi)
		u := ZMM()
		VMOVDQA64(zero, u)
		VPDPBUSD(ylo, lo, u)
		VPDPBUSD(yhi, hi, u)
		VPSUBD(bias, u, u)
		sums[g] = u
	}
	// Transpose: lane b, dword g ← Σ of the four dwords of lane b of sums[g].
	pair := func(a, c VecVirtual) VecVirtual {
		lo, hi := ZMM(), ZMM()
		VPUNPCKLDQ(c, a, lo)
		VPUNPCKHDQ(c, a, hi)
		VPADDD(hi, lo, lo)
		return lo
	}
	p01, p23 := pair(sums[0], sums[1]), pair(sums[2], sums[3])
	s, t := ZMM(), ZMM()
	VPUNPCKLQDQ(p23, p01, s)
	VPUNPCKHQDQ(p23, p01, t)
	VPADDD(t, s, s)
	VCVTDQ2PS(s, s)
	// The scales: dx of row g, block b at word 4b+g, times dy of block b.
	d01, d23 := ZMM(), ZMM()
	VMOVDQU64(Mem{Base: xs[0]}, d01)
	VPERMT2W(Mem{Base: xs[1]}, idx01, d01)
	VMOVDQU64(Mem{Base: xs[2]}, d23)
	VPERMT2W(Mem{Base: xs[3]}, idx23, d23)
	VPERMT2W(d23, idxMerge, d01)
	dx := ZMM()
	VCVTPH2PS(d01.AsY(), dx)
	e := ZMM()
	VMOVDQU64(Mem{Base: y}, e)
	VPERMT2W(Mem{Base: y, Disp: 64}, idxDY, e)
	dy := ZMM()
	VCVTPH2PS(e.AsY(), dy)
	VMULPS(dy, dx, dx)
	for b := range 4 {
		sb, db := s.AsX(), dx.AsX()
		if b > 0 {
			sb, db = XMM(), XMM()
			VEXTRACTF32X4(U8(b), s, sb)
			VEXTRACTF32X4(U8(b), dx, db)
		}
		VFMADD231PS(sb, db, acc)
	}
	for _, xr := range xs {
		ADDQ(U32(4*k.xStride), xr)
	}
	ADDQ(U32(4*block.Q8_0Bytes), y)
	SUBQ(Imm(4), nb)
	JMP(LabelRef(name + "_r4quad"))
}

// q8PairsY emits the AVX2 form of q8QuadsZ for the Q4_0 many-rows kernel:
// while nb ≥ 2, the four weight rows at xs times two blocks of the
// activation row at y, one block per 128-bit lane, added to the lanes of
// acc (lane r: row r); then xs, y and nb advance past the pair. The nibble
// sums are vpmaddubsw pairs (at most 2·15·127 each, and the two halves'
// sum still fits an int16) widened once by vpmaddwd, 8·Σy taken off; one
// group4 transposition then leaves the four rows' exact sums of block b in
// lane b, and two xmm fused multiply-adds add the blocks in order, as the
// per-block loop does: the same bits with the reduction, the scale
// gathering and the activation loads shared by two blocks.
func q8PairsY(k q8Kind, name string, xs []Register, y, nb Register, acc, eights VecVirtual) {
	if !k.nibblesMinus8 {
		panic("q8PairsY: " + k.name + " is not nibbles minus 8")
	}
	mask, ones := YMM(), YMM()
	VMOVDQU(mask0F, mask)
	VMOVDQU(words1, ones)
	Label(name + "_r4pair")
	CMPQ(nb, Imm(2))
	JL(LabelRef(name + "_r4block"))
	for _, xr := range xs {
		prefetchQ8(xr, 2*k.xStride)
	}
	ylo, yhi := YMM(), YMM()
	VBROADCASTI128(Mem{Base: y, Disp: 2}, ylo)
	VINSERTI128(U8(1), Mem{Base: y, Disp: block.Q8_0Bytes + 2}, ylo, ylo)
	VBROADCASTI128(Mem{Base: y, Disp: 18}, yhi)
	VINSERTI128(U8(1), Mem{Base: y, Disp: block.Q8_0Bytes + 18}, yhi, yhi)
	// udot forms, per dword, the sums of the four nibble products of lo
	// against ylo and of hi against yhi.
	udot := func(lo, hi VecVirtual) VecVirtual {
		p, t := YMM(), YMM()
		VPMADDUBSW(ylo, lo, p)
		VPMADDUBSW(yhi, hi, t)
		VPADDW(t, p, p)
		VPMADDWD(ones, p, p)
		return p
	}
	bias := udot(eights, eights)
	h := group4(func(r int) VecVirtual {
		q, hi := YMM(), YMM()
		VBROADCASTI128(Mem{Base: xs[r], Disp: 2}, q)
		VINSERTI128(U8(1), Mem{Base: xs[r], Disp: k.xStride + 2}, q, q)
		VPSRLW(U8(4), q, hi)
		VPAND(mask, hi, hi)
		VPAND(mask, q, q)
		u := udot(q, hi)
		VPSUBD(bias, u, u)
		return u
	})
	VCVTDQ2PS(h, h)
	var dxs []Mem
	for b := range 2 {
		for _, xr := range xs {
			dxs = append(dxs, Mem{Base: xr, Disp: b * k.xStride})
		}
	}
	d := gatherF16(dxs)
	e := splatF16(Mem{Base: y}, Mem{Base: y, Disp: block.Q8_0Bytes})
	VMULPS(e, d, d)
	VFMADD231PS(h.AsX(), d.AsX(), acc)
	h1, d1 := XMM(), XMM()
	VEXTRACTF128(U8(1), h, h1)
	VEXTRACTF128(U8(1), d, d1)
	VFMADD231PS(h1, d1, acc)
	for _, xr := range xs {
		ADDQ(U32(2*k.xStride), xr)
	}
	ADDQ(U32(2*block.Q8_0Bytes), y)
	SUBQ(Imm(2), nb)
	JMP(LabelRef(name + "_r4pair"))
}

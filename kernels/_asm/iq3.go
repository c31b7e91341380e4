package main

import (
	"github.com/llqt/llqt/formats/block"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The IQ3 dots (IQ3_XXS and IQ3_S weights against Q8_K activations) follow
// ggml-cpu's generic vec_dot, which is also block.DotIQ3_XXSQ8_K's and
// block.DotIQ3_SQ8_K's order, so that assembly and Go give the same bits:
//
//	isum_b = Σ_j (2ls_j+1)·Σ grid·sign·q8   exact int32, block b
//	dot    = dot + (f32(d_b)·dy_b)·f32(isum_b)   over the blocks in order
//	         (two roundings, no fused multiply-add), from +0
//	dot    = ¼·dot for IQ3_XXS
//
// Each group of four quants is a grid point: its index picks a dword of
// four unsigned magnitudes, gathered eight at a time with vpgatherdd; the
// signs go onto the activation quants (vpsignb) so that vpmaddubsw can take
// the magnitudes as its unsigned operand.

var (
	iq3xxsGrid Mem // block.IQ3XXSGrid as dwords
	iq3sGrid   Mem // block.IQ3SGrid as dwords
	qhShiftS   Mem // dwords 8, 7, …, 1: lane k moves bit k of IQ3_S's qh byte to bit 8
	dwords256  Mem // 8 × int32 256
	quarter    Mem // 4 × float32 0.25
)

func iq3Constants() {
	iq3xxsGrid = GLOBL("iq3xxsGrid", RODATA|NOPTR)
	for i, v := range block.IQ3XXSGrid {
		DATA(4*i, U32(v))
	}
	iq3sGrid = GLOBL("iq3sGrid", RODATA|NOPTR)
	for i, v := range block.IQ3SGrid {
		DATA(4*i, U32(v))
	}
	sharedConstants()
	qhShiftS = GLOBL("qhShiftS", RODATA|NOPTR)
	for k := range 8 {
		DATA(4*k, U32(uint32(8-k)))
	}
	dwords256 = GLOBL("dwords256", RODATA|NOPTR)
	for k := range 8 {
		DATA(4*k, U32(256))
	}
	quarter = GLOBL("quarter", RODATA|NOPTR)
	for k := range 4 {
		DATA(4*k, F32(0.25))
	}
}

// gatherGrid returns the eight grid dwords whose indices are the dwords of
// idx (consumed), from the table whose address is in grid.
func gatherGrid(grid Register, idx VecVirtual) VecVirtual {
	mask, q := YMM(), YMM()
	VPCMPEQD(mask, mask, mask)
	// A full write first: vpgatherdd merges into its destination, and the
	// destination, index and mask must be three different registers, which
	// the allocator ensures only for values live at the same time.
	VPXOR(q, q, q)
	VPGATHERDD(mask, Mem{Base: grid, Index: idx, Scale: 4}, q)
	return q
}

// oddScale returns 2·ls+1 for the 4-bit scale ls in the low bits of r
// (consumed), as 16 int16 lanes.
func oddScale(r Register) VecVirtual {
	ANDL(U32(0xf), r)
	LEAL(Mem{Base: r, Index: r, Scale: 1, Disp: 1}, r)
	sx, sc := XMM(), YMM()
	VMOVD(r, sx)
	VPBROADCASTW(sx, sc)
	return sc
}

// addSignedRun adds to each sumi[c] the products of the 32 magnitudes q of
// sub-block j with the activation quants of column c carrying the signs sgn
// (±1 bytes), byte pairs summed and weighted by the int16 scales sc.
func addSignedRun(q, sgn, sc VecVirtual, j int, ys []Register, sumi []VecVirtual) {
	for c := range sumi {
		yv := YMM()
		VMOVDQU(Mem{Base: ys[c], Disp: 4 + 32*j}, yv)
		VPSIGNB(sgn, yv, yv)
		VPMADDUBSW(yv, q, yv)
		VPMADDWD(sc, yv, yv)
		VPADDD(yv, sumi[c], sumi[c])
	}
}

// genDotIQ3XXS emits IQ3_XXS·Q8_K: block_iq3_xxs is d, qs[64] (grid
// indices), scales_and_signs[8] (u32: four 7-bit sign fields, ls in bits
// 28-31).
func genDotIQ3XXS(ncols int) {
	name := "dotIQ3XXSQ8_K" + suffix(ncols)
	iq3BlockDot(name, "nb IQ3_XXS blocks at x and nb Q8_K blocks at y", ncols, block.IQ3_XXSBytes, true, func(x Register, ys []Register) []VecVirtual {
		prefetchBlock(x, block.IQ3_XXSBytes)
		grid, signs := GP64(), GP64()
		LEAQ(iq3xxsGrid, grid)
		LEAQ(ksignRows, signs)
		sumi := make([]VecVirtual, ncols)
		for c := range ncols {
			sumi[c] = zeroY()
		}
		for j := range 8 {
			idx := YMM()
			VPMOVZXBD(Mem{Base: x, Disp: 2 + 8*j}, idx)
			q := gatherGrid(grid, idx)
			aux := GP32()
			MOVL(Mem{Base: x, Disp: 2 + 64 + 4*j}, aux)
			// The four 7-bit fields select qwords of ±1 bytes.
			lo, hi := XMM(), XMM()
			for l := range 4 {
				t := GP64()
				MOVL(aux, t.As32())
				if l > 0 {
					SHRL(U8(7*l), t.As32())
				}
				ANDL(U32(127), t.As32())
				m := Mem{Base: signs, Index: t, Scale: 8}
				switch l {
				case 0:
					VMOVQ(m, lo)
				case 1:
					VPINSRQ(U8(1), m, lo, lo)
				case 2:
					VMOVQ(m, hi)
				case 3:
					VPINSRQ(U8(1), m, hi, hi)
				}
			}
			sgn := YMM()
			VINSERTI128(U8(1), hi, lo.AsY(), sgn)
			SHRL(U8(28), aux)
			addSignedRun(q, sgn, oddScale(aux), j, ys, sumi)
		}
		return sumi
	})
}

// genDotIQ3S emits IQ3_S·Q8_K: block_iq3_s is d, qs[64] (grid index low
// bytes), qh[8] (bit k of qh[j]: bit 8 of group k's index in sub-block j),
// signs[32] (one bit per element), scales[4] (4-bit ls, two per byte).
func genDotIQ3S(ncols int) {
	name := "dotIQ3SQ8_K" + suffix(ncols)
	iq3BlockDot(name, "nb IQ3_S blocks at x and nb Q8_K blocks at y", ncols, block.IQ3_SBytes, false, func(x Register, ys []Register) []VecVirtual {
		prefetchBlock(x, block.IQ3_SBytes)
		grid := GP64()
		LEAQ(iq3sGrid, grid)
		sumi := make([]VecVirtual, ncols)
		for c := range ncols {
			sumi[c] = zeroY()
		}
		for j := range 8 {
			idx, h := YMM(), YMM()
			VPMOVZXBD(Mem{Base: x, Disp: 2 + 8*j}, idx)
			// The dword at qh[j] (the bytes after it shift out of the mask).
			VPBROADCASTD(Mem{Base: x, Disp: 66 + j}, h)
			VPSLLVD(qhShiftS, h, h)
			VPAND(dwords256, h, h)
			VPOR(h, idx, idx)
			q := gatherGrid(grid, idx)
			sgn := bitsToBytes(Mem{Base: x, Disp: 74 + 4*j})
			VPOR(bytes01, sgn, sgn)
			ls := GP32()
			MOVBLZX(Mem{Base: x, Disp: 106 + j/2}, ls)
			if j%2 == 1 {
				SHRL(U8(4), ls)
			}
			addSignedRun(q, sgn, oddScale(ls), j, ys, sumi)
		}
		return sumi
	})
}

// iq3BlockDot emits the dot of nb IQ3 super-blocks of xStride bytes at x
// (d at offset 0) with Q8_K activations, for ncols activation rows (see
// colArgs): body returns each column's integer sums of one block, which
// chainQ8KRounded adds to the column's lane of the float accumulator;
// quarterResult multiplies the result by ¼ (IQ3_XXS).
func iq3BlockDot(name, doc string, ncols, xStride int, quarterResult bool, body func(x Register, ys []Register) []VecVirtual) {
	x, ys, nb := colArgs(name, ncols, doc)
	acc := zeroX() // lane c: column c's dot
	eachBlock(name, x, xStride, ys, block.Q8_KBytes, nb, func() {
		chainQ8KRounded(Mem{Base: x}, ys, body(x, ys), acc)
	})
	if quarterResult {
		VMULPS(quarter, acc, acc)
	}
	laneReturn(ncols, acc)
}

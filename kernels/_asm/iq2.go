package main

import (
	"github.com/llqt/llqt/formats/block"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The 2-bit grid formats (IQ2_XXS, IQ2_XS, IQ2_S) against Q8_K. Every group
// of eight weights is a row of a grid table (eight unsigned magnitudes,
// loaded by index) and eight signs, which go onto the activations (vpsignb)
// so that vpmaddubsw can take the magnitudes as its unsigned operand. Each
// 32 elements are weighted by their sub-block scales 2s+1 (vpmaddwd), and
// the block's exact int32 total enters the float chain:
//
//	isum_b = Σ_groups (2s+1)·Σ grid·sign·q8        exact int32
//	dot    = dot + f32(isum_b)·(f32(d_b)·dy_b)      over the blocks in order
//	result = dot · 0.125
//
// which is ggml's generic vec_dot_iq2_*_q8_K, product and sum each rounded
// (no fused multiply-add), so that every shape returns the Go reference's
// bits exactly (block.DotIQ2_*Q8_K).

var (
	iq2xxsGridTab Mem // IQ2XXSGrid, 8 bytes a point
	iq2xsGridTab  Mem // IQ2XSGrid
	iq2sGridTab   Mem // IQ2SGrid
	iq2Eighths    Mem // 4 × float32 0.125
)

func iq2Constants() {
	grid := func(name string, points []uint64) Mem {
		m := GLOBL(name, RODATA|NOPTR)
		for i, p := range points {
			DATA(8*i, U64(p))
		}
		return m
	}
	iq2xxsGridTab = grid("iq2xxsGrid", block.IQ2XXSGrid[:])
	iq2xsGridTab = grid("iq2xsGrid", block.IQ2XSGrid[:])
	iq2sGridTab = grid("iq2sGrid", block.IQ2SGrid[:])
	sharedConstants()
	iq2Eighths = GLOBL("iq2Eighths", RODATA|NOPTR)
	for i := 0; i < 4; i++ {
		DATA(4*i, F32(0.125))
	}
}

// iq2Kind describes one of the three formats for genDotIQ2.
type iq2Kind struct {
	name, doc string
	size      int
	grid      *Mem
	// gridIndex and signIndex load, for group l (of four) of sub-block
	// ib (32 elements) of the block at x, its grid index and (IQ2_XXS,
	// IQ2_XS) its index into ksignRows, each into a fresh register: one at a
	// time, so that the four-row kernel stays within the sixteen.
	gridIndex, signIndex func(x Register, ib, l int) GPVirtual
	// packedScales is the offset of the 8 bytes of 4-bit sub-block scales
	// (two per 32 elements), or 0 for IQ2_XXS's one scale per 32 in the
	// top bits of the second dword of each 8 bytes.
	packedScales int
	// signBytes is the offset of IQ2_S's 32 sign bytes, one per group.
	signBytes int
}

var iq2Kinds = []iq2Kind{
	{name: "dotIQ2XXSQ8_K", doc: "nb IQ2_XXS blocks at x and nb Q8_K blocks at y", size: block.IQ2_XXSBytes, grid: &iq2xxsGridTab,
		gridIndex: func(x Register, ib, l int) GPVirtual {
			r := GP64()
			MOVBQZX(Mem{Base: x, Disp: 2 + 8*ib + l}, r)
			return r
		},
		signIndex: func(x Register, ib, l int) GPVirtual {
			r := GP64()
			MOVL(Mem{Base: x, Disp: 2 + 8*ib + 4}, r.As32())
			if l > 0 {
				SHRL(U8(7*l), r.As32())
			}
			ANDL(U32(127), r.As32())
			return r
		}},
	{name: "dotIQ2XSQ8_K", doc: "nb IQ2_XS blocks at x and nb Q8_K blocks at y", size: block.IQ2_XSBytes, grid: &iq2xsGridTab, packedScales: 66,
		gridIndex: func(x Register, ib, l int) GPVirtual {
			r := GP64()
			MOVWQZX(Mem{Base: x, Disp: 2 + 8*ib + 2*l}, r)
			ANDL(U32(511), r.As32())
			return r
		},
		signIndex: func(x Register, ib, l int) GPVirtual {
			r := GP64()
			MOVWQZX(Mem{Base: x, Disp: 2 + 8*ib + 2*l}, r)
			SHRL(U8(9), r.As32())
			return r
		}},
	{name: "dotIQ2SQ8_K", doc: "nb IQ2_S blocks at x and nb Q8_K blocks at y", size: block.IQ2_SBytes, grid: &iq2sGridTab, packedScales: 74, signBytes: 34,
		gridIndex: func(x Register, ib, l int) GPVirtual {
			// qs[4ib+l] | ((qh[ib] >> 2l) & 3) << 8
			r, t := GP64(), GP32()
			MOVBQZX(Mem{Base: x, Disp: 66 + ib}, r)
			if l > 0 {
				SHRL(U8(2*l), r.As32())
			}
			ANDL(U32(3), r.As32())
			SHLL(U8(8), r.As32())
			MOVBLZX(Mem{Base: x, Disp: 2 + 4*ib + l}, t)
			ORL(t, r.As32())
			return r
		}},
}

// gather4 returns a ymm of the four 8-byte table rows at index(0..3), in
// order.
func gather4(table Register, index func(l int) GPVirtual) VecVirtual {
	lo, hi, v := XMM(), XMM(), YMM()
	VMOVQ(Mem{Base: table, Index: index(0), Scale: 8}, lo)
	VPINSRQ(U8(1), Mem{Base: table, Index: index(1), Scale: 8}, lo, lo)
	VMOVQ(Mem{Base: table, Index: index(2), Scale: 8}, hi)
	VPINSRQ(U8(1), Mem{Base: table, Index: index(3), Scale: 8}, hi, hi)
	VINSERTI128(U8(1), hi, lo.AsY(), v)
	return v
}

func genDotIQ2(k iq2Kind, ncols int) {
	name := k.name + suffix(ncols)
	x, ys, nb := colArgs(name, ncols, k.doc)
	acc := zeroX() // lane c: column c's dot
	grid, signs := GP64(), GP64()
	LEAQ(*k.grid, grid)
	if k.signBytes == 0 {
		LEAQ(ksignRows, signs)
	}
	eachBlock(name, x, k.size, ys, block.Q8_KBytes, nb, func() {
		prefetchBlock(x, k.size)

		// The sixteen sub-block scales 2s+1 as words (IQ2_XS, IQ2_S): byte j of
		// the packed scales holds sub-block 2j in its low nibble.
		var scales VecVirtual
		if k.packedScales != 0 {
			packed, hiN, s16 := XMM(), XMM(), XMM()
			VMOVQ(Mem{Base: x, Disp: k.packedScales}, packed)
			VPSRLW(U8(4), packed, hiN)
			VPAND(mask0F, hiN, hiN)
			VPAND(mask0F, packed, packed)
			VPUNPCKLBW(hiN, packed, s16)
			VPADDB(s16, s16, s16)
			VPOR(bytes01, s16, s16)
			scales = YMM()
			VPMOVZXBW(s16, scales)
		}
		sumi := make([]VecVirtual, ncols)
		for c := range ncols {
			sumi[c] = YMM()
			VPXOR(sumi[c], sumi[c], sumi[c])
		}
		var scl VecVirtual
		for ib := 0; ib < 8; ib++ {
			q := gather4(grid, func(l int) GPVirtual { return k.gridIndex(x, ib, l) })
			var sg VecVirtual
			if k.signBytes != 0 {
				sg = bitsToBytes(Mem{Base: x, Disp: k.signBytes + 4*ib})
				VPOR(bytes01, sg, sg)
			} else {
				sg = gather4(signs, func(l int) GPVirtual { return k.signIndex(x, ib, l) })
			}
			sc := YMM()
			if k.packedScales != 0 {
				if ib%4 == 0 {
					scl = YMM()
					VPERM2I128(U8(0x11*(ib/4)), scales, scales, scl)
				}
				VPSHUFB(wordShuf2.Offset(32*(ib%4)), scl, sc)
			} else {
				// IQ2_XXS: 2·(a1 >> 28) + 1 for the whole 32.
				ls := GP32()
				MOVL(Mem{Base: x, Disp: 2 + 8*ib + 4}, ls)
				SHRL(U8(28), ls)
				SHLL(U8(1), ls)
				ORL(U32(1), ls)
				sx := XMM()
				VMOVD(ls, sx)
				VPBROADCASTW(sx, sc)
			}
			addSignedRun(q, sg, sc, ib, ys, sumi)
		}
		chainQ8KRounded(Mem{Base: x}, ys, sumi, acc)
	})
	VMULPS(iq2Eighths, acc, acc)
	laneReturn(ncols, acc)
}

func genIQ2() {
	for _, k := range iq2Kinds {
		for _, n := range []int{1, 4} {
			genDotIQ2(k, n)
		}
		rowsMode = true
		genDotIQ2(k, 1)
		rowsMode = false
	}
}

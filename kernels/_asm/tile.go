package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// words1 is 16 int16 ones, the vpmaddwd operand that sums byte-product pairs.
var words1 Mem

// genTileQ8_0 emits the 2×4 tile kernel for Q8_0 weights and Q8_0
// activations: two weight rows (x, x+xstride) times four activation rows
// (y + c*ystride), storing the eight dots at out + r + c*outstride (floats).
// Each loaded activation block serves both weight rows and each weight block
// all four activation rows, and the eight scale products of a block are
// formed in two multiplies and taken apart with in-lane shuffles (a
// broadcast load from a stack slot just stored stalls on store forwarding).
//
// The single-row kernel keeps two accumulators per output: even blocks in
// one, odd blocks in the other, summed at the end. Sixteen accumulators do
// not fit beside the temporaries, so the tile runs the even blocks as one
// pass and the odd blocks as a second, parking the first pass's sums on the
// stack. Each accumulator then sees the same fused multiply-adds in the same
// order as in the single-row kernel, and the outputs are bit-identical.
func genTileQ8_0(vnni bool) {
	if !vnni && words1 == (Mem{}) {
		words1 = GLOBL("words1", RODATA|NOPTR)
		for i := 0; i < 16; i++ {
			DATA(2*i, U16(1))
		}
	}
	name := "tileQ8_0Q8_0x2x4AVX2"
	if vnni {
		name = "tileQ8_0Q8_0x2x4VNNI"
	}
	TEXT(name, NOSPLIT, "func(x *byte, xstride int, y *byte, ystride, nb int, out *float32, outstride int)")
	Doc(name+" stores at out + r + c*outstride (in floats) the dot product of nb Q8_0 blocks at x + r*xstride",
		"and nb Q8_0 blocks at y + c*ystride (in bytes), for r < 2 and c < 4.")
	if vnni {
		Comment("Needs AVX512-VNNI and AVX512-VL besides AVX2, FMA and F16C.")
	}
	parked := AllocLocal(8 * 32)
	nbAll := Load(Param("nb"), GP64())
	var first [8]VecVirtual
	for pass := 0; pass < 2; pass++ {
		// Pointers at the pass's first block, and its block count:
		// (nb+1)/2 even blocks, nb/2 odd ones.
		x0 := Load(Param("x"), GP64())
		x1 := GP64()
		MOVQ(x0, x1)
		ADDQ(Load(Param("xstride"), GP64()), x1)
		ys := []Register{Load(Param("y"), GP64())}
		stride := Load(Param("ystride"), GP64())
		for c := 1; c < 4; c++ {
			yc := GP64()
			MOVQ(ys[c-1], yc)
			ADDQ(stride, yc)
			ys = append(ys, yc)
		}
		cnt := GP64()
		MOVQ(nbAll, cnt)
		if pass == 0 {
			INCQ(cnt)
		} else {
			ADDQ(U32(34), x0)
			ADDQ(U32(34), x1)
			for _, y := range ys {
				ADDQ(U32(34), y)
			}
		}
		SHRQ(U8(1), cnt)
		accs := make([]VecVirtual, 8) // r*4 + c
		for i := range accs {
			accs[i] = zeroY()
		}
		loop, done := name+"_loop"+string(rune('0'+pass)), name+"_done"+string(rune('0'+pass))
		Label(loop)
		TESTQ(cnt, cnt)
		JZ(LabelRef(done))
		// Scale products dx_r·dy_c at scales + 16r + 4c.
		g, dys := GP32(), XMM()
		MOVWLZX(Mem{Base: ys[0]}, g)
		VMOVD(g, dys)
		for c := 1; c < 4; c++ {
			VPINSRW(U8(c), Mem{Base: ys[c]}, dys, dys)
		}
		dy := YMM()
		VCVTPH2PS(dys, dys)
		VINSERTF128(U8(1), dys, dys.AsY(), dy)
		xs := []Register{x0, x1}
		prods := make([]VecVirtual, 2)
		for r, xr := range xs {
			prods[r] = broadcastF16(Mem{Base: xr})
			VMULPS(dy, prods[r], prods[r])
		}
		ax := make([]VecVirtual, 2)
		for r, xr := range xs {
			ax[r] = YMM()
			VMOVDQU(Mem{Base: xr, Disp: 2}, ax[r])
			VPSIGNB(ax[r], ax[r], ax[r])
		}
		for c := 0; c < 4; c++ {
			yc := YMM()
			VMOVDQU(Mem{Base: ys[c], Disp: 2}, yc)
			for r, xr := range xs {
				sy := YMM()
				VPSIGNB(Mem{Base: xr, Disp: 2}, yc, sy)
				if vnni {
					t := YMM()
					VPXOR(t, t, t)
					VPDPBUSD(sy, ax[r], t)
					sy = t
				} else {
					VPMADDUBSW(sy, ax[r], sy)
					VPMADDWD(words1, sy, sy) // from memory: no register left for it
				}
				VCVTDQ2PS(sy, sy)
				d := YMM()
				VSHUFPS(U8(0x55*c), prods[r], prods[r], d)
				VFMADD231PS(sy, d, accs[4*r+c])
			}
		}
		ADDQ(U32(68), x0)
		ADDQ(U32(68), x1)
		for _, y := range ys {
			ADDQ(U32(68), y)
		}
		DECQ(cnt)
		JMP(LabelRef(loop))
		Label(done)
		if pass == 0 {
			for i, a := range accs {
				VMOVUPS(a, parked.Offset(32*i))
			}
		} else {
			copy(first[:], accs)
		}
	}
	out, ostride := Load(Param("out"), GP64()), Load(Param("outstride"), GP64())
	SHLQ(U8(2), ostride)
	for c := 0; c < 4; c++ {
		if c > 0 {
			ADDQ(ostride, out)
		}
		for r := 0; r < 2; r++ {
			a := first[4*r+c]
			// even + odd, as the single-row kernel adds its two accumulators.
			VADDPS(parked.Offset(32*(4*r+c)), a, a)
			s := hsum(a)
			VMOVSS(s, Mem{Base: out, Disp: 4 * r})
		}
	}
	VZEROUPPER()
	RET()
}

package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// K-quant panel layout (see packPanelQ8K in package kernels): sixteen Q8_K
// activation rows repacked per 256-element block as 64 steps k of 64 bytes,
// step k holding quants 4k..4k+3 of rows 0-7 then of rows 8-15; then for
// each pair of 32-element runs (2p, 2p+1) the sixteen rows' run sums as
// int16 pairs (run 2p, run 2p+1), 64 bytes per pair; then the sixteen rows'
// scales as float32.
const (
	panelKSums   = 64 * 64
	panelKScales = panelKSums + 4*64
	panelKBlock  = panelKScales + 16*4
)

// genPanelK45 emits the Q4_K (q5=false) or Q5_K panel kernel,
// func(x *byte, xstride int, p *byte, nb int, out *float32, outstride int):
// two weight rows (x, x + xstride) times a panel of sixteen Q8_K
// activation rows, the 32 dots stored at out + r + c*outstride (in floats).
//
// Each vpdpbusd multiplies four unsigned quants of a weight row (0..15, or
// 0..31 for Q5_K), broadcast, with the same four signed quants of eight
// activation rows, so the lanes of an accumulator are eight outputs' run
// sums; a run's sums are then scaled by its 6-bit scale (vpmulld) into the
// exact block sums isum_b, and the mins meet the run sums with vpmaddwd
// into msum_b. The float steps are those of genDotK45, lane by lane, so
// every output has the same bits as the single dot.
//
// The weight blocks are unpacked once per block into a stack buffer (one
// byte per quant, scale dwords, min word pairs), so that the inner loop's
// weight operands are plain broadcast loads.
func genPanelK45(q5 bool) {
	name, xStride, qsOff, doc := "panelQ4_KQ8_Kx2x16VNNI", 144, 16, "Q4_K"
	if q5 {
		name, xStride, qsOff, doc = "panelQ5_KQ8_Kx2x16VNNI", 176, 48, "Q5_K"
	}
	// Not NOSPLIT: the frame is too large for the nosplit stack budget.
	TEXT(name, 0, "func(x *byte, xstride int, p *byte, nb int, out *float32, outstride int)")
	Doc(name+" stores at out + r + c*outstride (in floats) the dot product of nb "+doc+" blocks at x + r*xstride",
		"and activation row c of the Q8_K panel at p (nb blocks), for r < 2 and c < 16.")
	Comment("Needs AVX512-VNNI and AVX512-VL besides AVX2, FMA and F16C.")
	wbuf := AllocLocal(2 * 256) // unpacked quants, one byte each, per weight row
	sbuf := AllocLocal(2 * 32)  // the eight scales as dwords, per weight row
	mbuf := AllocLocal(2 * 16)  // the eight mins as words, per weight row
	abuf := AllocLocal(4 * 32)  // float accumulators [row][column octet]
	at := func(m Mem, off int) Mem { return m.Offset(off) }

	xs := offsets(Load(Param("x"), GP64()), Load(Param("xstride"), GP64()), 2)
	p := Load(Param("p"), GP64())
	nb := Load(Param("nb"), GP64())
	z := zeroY()
	for i := range 4 {
		VMOVUPS(z, at(abuf, 32*i))
	}

	Label(name + "_loop")
	TESTQ(nb, nb)
	JZ(LabelRef(name + "_done"))

	// Unpack both weight blocks.
	mask := YMM()
	VMOVDQU(mask0F, mask)
	for r := range 2 {
		for h := range 4 {
			v, lo := YMM(), YMM()
			VMOVDQU(Mem{Base: xs[r], Disp: qsOff + 32*h}, v)
			VPAND(mask, v, lo)
			VPSRLW(U8(4), v, v)
			VPAND(mask, v, v)
			if q5 {
				// Bit j of qh[l] is the fifth bit of element l of run j.
				for half, q := range []VecVirtual{lo, v} {
					j := 2*h + half
					t := YMM()
					VMOVDQU(Mem{Base: xs[r], Disp: 16}, t)
					if j <= 4 {
						VPSLLW(U8(4-j), t, t)
					} else {
						VPSRLW(U8(j-4), t, t)
					}
					VPAND(mask10, t, t)
					VPOR(t, q, q)
				}
			}
			VMOVDQU(lo, at(wbuf, 256*r+64*h))
			VMOVDQU(v, at(wbuf, 256*r+64*h+32))
		}
		sc, mn := kScalesMins(Mem{Base: xs[r], Disp: 4})
		scd := YMM()
		VPMOVZXBD(sc, scd)
		VMOVDQU(scd, at(sbuf, 32*r))
		VPMOVZXBW(mn, mn)
		VMOVDQU(mn, at(mbuf, 16*r))
	}

	// isum: runs of eight steps, each run's sums scaled into the totals.
	var isum, t [2][2]VecVirtual
	for r := range 2 {
		for o := range 2 {
			isum[r][o] = zeroY()
		}
	}
	for j := range 8 {
		for r := range 2 {
			for o := range 2 {
				t[r][o] = zeroY()
			}
		}
		for s := range 8 {
			k := 8*j + s
			var ys [2]VecVirtual
			for o := range 2 {
				ys[o] = YMM()
				VMOVDQU(Mem{Base: p, Disp: 64*k + 32*o}, ys[o])
			}
			for r := range 2 {
				u := YMM()
				VPBROADCASTD(at(wbuf, 256*r+4*k), u)
				for o := range 2 {
					VPDPBUSD(ys[o], u, t[r][o])
				}
			}
		}
		for r := range 2 {
			scv := YMM()
			VPBROADCASTD(at(sbuf, 32*r+4*j), scv)
			for o := range 2 {
				VPMULLD(scv, t[r][o], t[r][o])
				VPADDD(t[r][o], isum[r][o], isum[r][o])
			}
		}
	}

	// msum: the run-pair sums of each row against the min pairs.
	var msum [2][2]VecVirtual
	for r := range 2 {
		for o := range 2 {
			msum[r][o] = zeroY()
		}
	}
	for pr := range 4 {
		var ps [2]VecVirtual
		for o := range 2 {
			ps[o] = YMM()
			VMOVDQU(Mem{Base: p, Disp: panelKSums + 64*pr + 32*o}, ps[o])
		}
		for r := range 2 {
			mm := YMM()
			VPBROADCASTD(at(mbuf, 16*r+4*pr), mm)
			for o := range 2 {
				prod := YMM()
				VPMADDWD(ps[o], mm, prod)
				VPADDD(prod, msum[r][o], msum[r][o])
			}
		}
	}

	// acc = fma(f32(isum), f32(d)·dy, acc); acc = fma(-f32(msum), f32(dmin)·dy, acc).
	for r := range 2 {
		dx := broadcastF16(Mem{Base: xs[r]})
		dmn := broadcastF16(Mem{Base: xs[r], Disp: 2})
		for o := range 2 {
			dy, d, dm, a := YMM(), YMM(), YMM(), YMM()
			VMOVUPS(Mem{Base: p, Disp: panelKScales + 32*o}, dy)
			VMULPS(dx, dy, d)
			VMULPS(dmn, dy, dm)
			VCVTDQ2PS(isum[r][o], isum[r][o])
			VCVTDQ2PS(msum[r][o], msum[r][o])
			VMOVUPS(at(abuf, 64*r+32*o), a)
			VFMADD231PS(isum[r][o], d, a)
			VFNMADD231PS(msum[r][o], dm, a)
			VMOVUPS(a, at(abuf, 64*r+32*o))
		}
	}
	for _, x := range xs {
		ADDQ(U32(xStride), x)
	}
	ADDQ(U32(panelKBlock), p)
	DECQ(nb)
	JMP(LabelRef(name + "_loop"))

	Label(name + "_done")
	var accs [2][2]VecVirtual
	for r := range 2 {
		for o := range 2 {
			accs[r][o] = YMM()
			VMOVUPS(at(abuf, 64*r+32*o), accs[r][o])
		}
	}
	storePanel(accs)
	VZEROUPPER()
	RET()
}

// storePanel stores a panel kernel's two rows × sixteen columns, held as
// accs[row][column octet] (lane c%8 of accs[r][c/8] is row r, column c), at
// out + r + c*outstride (in floats).
func storePanel(accs [2][2]VecVirtual) {
	o, stride := Load(Param("out"), GP64()), Load(Param("outstride"), GP64())
	SHLQ(U8(2), stride)
	for oct := range 2 {
		lo, hi := YMM(), YMM()
		VUNPCKLPS(accs[1][oct], accs[0][oct], lo) // [r0c0 r1c0 r0c1 r1c1 | c4 c5]
		VUNPCKHPS(accs[1][oct], accs[0][oct], hi) // [c2 c3 | c6 c7]
		loHi, hiHi := XMM(), XMM()
		VEXTRACTF128(U8(1), lo, loHi)
		VEXTRACTF128(U8(1), hi, hiHi)
		// Columns in order, two per xmm: the low and high 64 bits.
		for _, x := range []Register{lo.AsX(), hi.AsX(), loHi, hiHi} {
			VMOVLPS(x, Mem{Base: o})
			ADDQ(stride, o)
			VMOVHPS(x, Mem{Base: o})
			ADDQ(stride, o)
		}
	}
}

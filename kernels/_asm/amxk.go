package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// AMX tile kernels for the K-quants (Q4_K, Q5_K, Q6_K, IQ4_XS) against Q8_K
// panels. A K-quant block's exact integer sum (see panelKKind) is
//
//	isum = Σ_k s_run(k)·q_k·y_k   (− Σ_g m_g·bsum_g for the mins, apart)
//
// where q is the true quant: the unsigned one u for Q4_K and Q5_K, u less
// its offset for Q6_K (32) and IQ4_XS (128), which the panel kernels take
// off as −offset·Σ s·bsum and these fold into the product. Each a_k =
// s·q_k lies within ±4096 (Q4_K, Q5_K: 0..1953). Split as a = 128·h + l
// (l in 0..127, h in −64..63), both halves are signed bytes, and Σ a·y =
// 128·Σ h·y + Σ l·y: two TDPBSSD per 64 quants, over whole blocks of 256
// (no scaled step between runs). For the mins, the coefficients m_g (one
// per group of 16) fit a signed byte, and the Q8_K group sums bsum_g
// (±2032) split as 64·bh + bl do too: two TDPBSSD more. The integers are
// the panel kernels', and so is the float step, so the bits are the dot's.
//
// A task's sixteen weight rows are prepared once (genAMXPrepK): per block
// the h and l tiles of its four 64-quant chunks (16 rows × 64 bytes each),
// the mins (16 rows × 16 bytes, 64 bytes apart, as a row's other tiles)
// and the scales as halves. The activations' split group sums (bl and bh
// as B tiles, 4 × 64 bytes each) are packed beside the panels
// (packAMXSums in package kernels) for the types with mins.

// Layout of a prepared block of sixteen weight rows, and of the split sums.
const (
	amxKHi    = 0        // four chunks of 16 rows × 64 bytes: h
	amxKLo    = 4 * 1024 // the same for l
	amxKCoef  = 8 * 1024 // 16 rows × 16 mins, 64 bytes apart
	amxKBlock = amxKCoef + 1024
	amxKSums  = 512 // per panel block: bl (4 × 64 bytes), then bh
)

// Tiles of the K kernel: four sums tiles, then the operands.
const (
	tmmKHi, tmmKLo, tmmKMl, tmmKMh = 0, 1, 2, 3 // 16 × 16 int32
	tmmKA                          = 4          // 16 weight rows × 64 quants (h or l)
	tmmKB                          = 5          // 16 × (4 quants × 16 activation rows)
	tmmKCoef                       = 6          // 16 weight rows × 16 coefficients
	tmmKSums                       = 7          // 4 × (4 group sums × 16 activation rows)
)

var (
	amxKTileCfg Mem
	words127    Mem // 32 × int16 127
)

func amxKConstants() {
	amxKTileCfg = GLOBL("amxKTileCfg", RODATA|NOPTR)
	DATA(0, U8(1))
	colsb := [8]int{64, 64, 64, 64, 64, 64, 16, 64}
	rows := [8]int{16, 16, 16, 16, 16, 16, 16, 4}
	for t := range 8 {
		DATA(16+2*t, U16(colsb[t]))
	}
	for t := range 8 {
		DATA(48+t, U8(rows[t]))
	}
	DATA(63, U8(0))
	words127 = GLOBL("words127", RODATA|NOPTR)
	for i := range 32 {
		DATA(2*i, U16(127))
	}
}

// genAMXPrepK emits func(w *byte, wstride, nb int, a *byte, dh *byte): the
// prepared blocks (amxKBlock bytes each, at a + b*amxKBlock) of the nb
// blocks of sixteen rows at w + r*wstride, and their half-precision scales:
// d of row r, block b at dh[2(32b + r)], and for types with mins dmin at
// dh[2(32b + 16 + r)].
func genAMXPrepK(k panelKKind) {
	name := "amxPrep" + k.doc
	TEXT(name, 0, "func(w *byte, wstride, nb int, a *byte, dh *byte)")
	Doc(name + " prepares sixteen " + k.doc + " rows of nb blocks for the AMX K kernels (see kernels/_asm/amxk.go).")
	Comment("Needs AVX512-F and -BW.")
	wbuf := AllocLocal(256)
	sbuf := AllocLocal(4 * 16)
	mbuf := AllocLocal(32)
	// The row loop's pointers live on the stack: the unpacking takes six
	// general registers.
	rows, w, a, dh := AllocLocal(8), AllocLocal(8), AllocLocal(8), AllocLocal(8)
	MOVQ(U32(16), rows)
	for _, c := range []struct {
		param string
		local Mem
	}{{"w", w}, {"a", a}, {"dh", dh}} {
		r := Load(Param(c.param), GP64())
		MOVQ(r, c.local)
	}
	Label(name + "_row")
	x, dst, hp := GP64(), GP64(), GP64()
	MOVQ(w, x)
	MOVQ(a, dst)
	MOVQ(dh, hp)
	nb := Load(Param("nb"), GP64())
	Label(name + "_block")
	k.unpack(x, wbuf, sbuf, mbuf)
	mask, offset := ZMM(), ZMM()
	VBROADCASTI64X4(words127, mask)
	if !k.mins { // the quants' offset, 1 << offsetShift, as words
		t := GP32()
		MOVL(U32(1<<k.offsetShift), t)
		VPBROADCASTW(t, offset)
	}
	runLen := 4 * k.runSteps
	for i := range 8 { // 32 quants at a time
		u, sc := ZMM(), ZMM()
		VPMOVZXBW(wbuf.Offset(32*i), u)
		if runLen == 32 {
			VPBROADCASTW(sbuf.Offset(4*i), sc)
		} else {
			lo, hi := YMM(), YMM()
			VPBROADCASTW(sbuf.Offset(8*i), lo)
			VPBROADCASTW(sbuf.Offset(8*i+4), hi)
			VINSERTI64X4(U8(1), hi, lo.AsZ(), sc)
		}
		if !k.mins {
			VPSUBW(offset, u, u) // the true quant
		}
		VPMULLW(sc, u, u) // a = s·u, exact in int16
		l, h := ZMM(), ZMM()
		VPANDD(mask, u, l)
		VPSRAW(U8(7), u, h)
		lb, hb := YMM(), YMM()
		VPMOVWB(l, lb)
		VPMOVWB(h, hb)
		off := (32*i)/64*1024 + (32*i)%64
		VMOVDQU(hb, Mem{Base: dst, Disp: amxKHi + off})
		VMOVDQU(lb, Mem{Base: dst, Disp: amxKLo + off})
	}
	if k.mins {
		cw, cb := YMM(), XMM()
		VMOVDQU(mbuf, cw)
		VPMOVWB(cw, cb)
		VMOVDQU(cb, Mem{Base: dst, Disp: amxKCoef})
	}
	t := GP32()
	MOVWLZX(Mem{Base: x, Disp: k.dm}, t)
	MOVW(t.As16(), Mem{Base: hp})
	if k.mins {
		MOVWLZX(Mem{Base: x, Disp: k.dm + 2}, t)
		MOVW(t.As16(), Mem{Base: hp, Disp: 32})
	}
	ADDQ(U32(k.xStride), x)
	ADDQ(U32(amxKBlock), dst)
	ADDQ(U32(64), hp)
	DECQ(nb)
	JNZ(LabelRef(name + "_block"))
	t64 := GP64()
	Load(Param("wstride"), t64)
	ADDQ(t64, w)
	ADDQ(U32(64), a)
	ADDQ(U32(2), dh)
	DECQ(rows)
	JNZ(LabelRef(name + "_row"))
	VZEROUPPER()
	RET()
}

// genAMXPanelsK emits func(a *byte, dw *float32, p *byte, pstride int, bs
// *byte, bsstride, np, nb int, out *float32, outstrideBytes int, buf
// *byte): the dots of sixteen prepared weight rows (a, see genAMXPrepK; dw
// their scales as float32, d at dw[32b + r] and dmin at dw[32b + 16 + r])
// with np Q8_K panels at p + q*pstride, whose split sums are at bs +
// q*bsstride.
// mins: subtract the mins' part times dmin·dy (Q4_K, Q5_K); else (plain)
// the prepared quants already carry their offset (Q6_K, IQ4_XS) and bs is
// not read. buf is 8 KiB of scratch.
func genAMXPanelsK(mins bool) {
	name := "amxPanelsKMins"
	if !mins {
		name = "amxPanelsKPlain"
	}
	TEXT(name, NOSPLIT, "func(a *byte, dw *float32, p *byte, pstride int, bs *byte, bsstride, np, nb int, out *float32, outstrideBytes int, buf *byte)")
	Doc(name+" stores at out + r*4 + c*outstrideBytes the dot product of nb prepared K-quant blocks of sixteen",
		"weight rows (a, scales at dw) and activation row c%16 of the Q8_K panel at p + (c/16)*pstride,",
		"for r < 16 and c < 16*np (see kernels/_asm/amxk.go). buf is 8 KiB of scratch.")
	Comment("Needs AMX-TILE, AMX-INT8 (with the OS's permission) and AVX512-F.")
	aPtr, bPtr, sPtr, s64, cur, prev := RSI, R8, RDI, R9, R10, R11
	LEAQ(amxKTileCfg, cur)
	ldtilecfg(cur)
	MOVQ(U32(64), s64)
	Load(Param("buf"), cur)
	LEAQ(Mem{Base: cur, Disp: 4096}, prev)
	p := Load(Param("p"), GP64())
	bsPanel := Load(Param("bs"), GP64())
	np := Load(Param("np"), GP64())
	out := Load(Param("out"), GP64())
	iota, zero := amxOutputConsts()

	Label(name + "_panel")
	MOVQ(p, bPtr)
	MOVQ(bsPanel, sPtr)
	Load(Param("a"), aPtr)
	dw := Load(Param("dw"), GP64())
	nb := Load(Param("nb"), GP64())
	accs := amxAccumulators(zero)
	sumTiles := []byte{tmmKHi, tmmKLo}
	if mins {
		sumTiles = append(sumTiles, tmmKMl, tmmKMh)
	}
	stage := func() {
		for _, t := range sumTiles {
			tilezero(t)
		}
		for c := range int32(4) {
			tileloaddDisp(tmmKB, bPtr, s64, 1024*c)
			tileloaddDisp(tmmKA, aPtr, s64, amxKHi+1024*c)
			tdpbssd(tmmKHi, tmmKA, tmmKB)
			tileloaddDisp(tmmKA, aPtr, s64, amxKLo+1024*c)
			tdpbssd(tmmKLo, tmmKA, tmmKB)
		}
		if mins {
			tileloaddDisp(tmmKCoef, aPtr, s64, amxKCoef)
			tileloaddDisp(tmmKSums, sPtr, s64, 0)
			tdpbssd(tmmKMl, tmmKCoef, tmmKSums)
			tileloaddDisp(tmmKSums, sPtr, s64, 256)
			tdpbssd(tmmKMh, tmmKCoef, tmmKSums)
			ADDQ(U32(amxKSums), sPtr)
		}
		for i, t := range sumTiles {
			tilestored(t, cur, s64, int32(1024*i))
		}
		ADDQ(U32(amxKBlock), aPtr)
		ADDQ(U32(panelKBlock), bPtr)
	}
	// tail scales and adds the sums at prev, of the block back blocks
	// behind the tile pointers.
	tail := func(back int) {
		dy := ZMM()
		VMOVUPS(Mem{Base: bPtr, Disp: panelKScales - back*panelKBlock}, dy)
		for r := range 16 {
			isum := ZMM()
			VMOVDQU32(Mem{Base: prev, Disp: 64 * r}, isum)
			VPSLLD(U8(7), isum, isum)
			VPADDD(Mem{Base: prev, Disp: 1024 + 64*r}, isum, isum)
			d := ZMM()
			VMULPS_BCST(Mem{Base: dw, Disp: 4 * r}, dy, d)
			VCVTDQ2PS(isum, isum)
			VFMADD231PS(isum, d, accs[r])
			if mins {
				psum, dm := ZMM(), ZMM()
				VMOVDQU32(Mem{Base: prev, Disp: 3072 + 64*r}, psum)
				VPSLLD(U8(6), psum, psum)
				VPADDD(Mem{Base: prev, Disp: 2048 + 64*r}, psum, psum)
				VMULPS_BCST(Mem{Base: dw, Disp: 64 + 4*r}, dy, dm)
				VCVTDQ2PS(psum, psum)
				VFNMADD231PS(psum, dm, accs[r])
			}
		}
		ADDQ(U32(128), dw)
	}
	// Block b's tiles (stage, storing its sums at cur) run before block
	// b−1's sums (at prev) are scaled (tail), so that the two overlap;
	// then the buffers swap.
	stage()
	XCHGQ(cur, prev)
	DECQ(nb)
	JZ(LabelRef(name + "_last"))
	Label(name + "_block")
	stage()
	tail(2)
	XCHGQ(cur, prev)
	DECQ(nb)
	JNZ(LabelRef(name + "_block"))
	Label(name + "_last")
	tail(1)

	storeTransposed(accs, cur, iota, zero, out, paramMem("outstrideBytes"))
	ADDQ(paramMem("pstride"), p)
	ADDQ(paramMem("bsstride"), bsPanel)
	DECQ(np)
	JNZ(LabelRef(name + "_panel"))
	tilerelease()
	VZEROUPPER()
	RET()
}

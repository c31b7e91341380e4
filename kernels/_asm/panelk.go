package main

import (
	"strconv"

	"github.com/llqt/llqt/formats/block"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// K-quant panel layout (see packPanelQ8K in package kernels): sixteen Q8_K
// activation rows repacked per 256-element block as 64 steps k of 64 bytes,
// step k holding quants 4k..4k+3 of rows 0-7 then of rows 8-15; then for
// each pair p of 16-quant groups the sixteen rows' group sums (the Q8_K
// bsums 2p and 2p+1) as int16 pairs, 64 bytes per pair; then the sixteen
// rows' scales as float32.
const (
	panelKSums   = 64 * 64
	panelKScales = panelKSums + 8*64
	panelKBlock  = panelKScales + 16*4
)

// A panelKKind is a K-quant weight type with a panel kernel. Its quants are
// unsigned bytes u (the true quant is u, or u minus a power-of-two offset),
// in runs of runSteps·4 quants that share an integer scale, so that
//
//	isum_b = Σ_runs scale · Σ u·y  −  (offset correction)
//
// is exact in int32. The correction, or the mins' sum, is Σ_p pair_p·bsums_p
// (vpmaddwd of int16 pairs) over the eight bsum pairs.
type panelKKind struct {
	name, doc string
	xStride   int
	runSteps  int      // 4-quant steps per scaled run: 8 (runs of 32) or 4 (runs of 16)
	umax      int      // the largest unsigned quant
	avx2      byteMode // how the AVX2 panel forms the sums (see byteDots)
	// unpack writes the block at x as 256 unsigned quants (one byte each,
	// in element order) to w, the runs' scales as int32 to s, and to m the
	// eight int16 pairs that meet the bsum pairs.
	unpack func(x Register, w, s, m Mem)
	// mins: the pairs are mins and their sum is subtracted in a second fma
	// with f32(dmin)·dy (Q4_K, Q5_K). Otherwise the sum, shifted left by
	// offsetShift, is taken off isum_b (the quants' offset: 32 for Q6_K,
	// 128 for IQ4_XS).
	mins        bool
	offsetShift int
	// dm is where the block's half-precision scale d is (dmin follows it
	// when mins).
	dm int
}

var panelKKinds = []panelKKind{
	{"Q4_KQ8_K", "Q4_K", block.Q4_KBytes, 8, 15, unsignedWeights, func(x Register, w, s, m Mem) { unpackK45(false, x, w, s, m) }, true, 0, 0},
	{"Q5_KQ8_K", "Q5_K", block.Q5_KBytes, 8, 31, unsignedWeights, func(x Register, w, s, m Mem) { unpackK45(true, x, w, s, m) }, true, 0, 0},
	{"Q6_KQ8_K", "Q6_K", block.Q6_KBytes, 4, 63, unsignedWeights, unpackQ6K, false, 5, 208},
	{"IQ4XSQ8_K", "IQ4_XS", block.IQ4_XSBytes, 8, 241, wordPanel, unpackIQ4XS, false, 7, 0},
}

// unpackK45 unpacks a Q4_K or Q5_K block: quants 0..15 (0..31), the eight
// 6-bit scales, and each min twice (m_j, m_j) to meet bsums 2j and 2j+1.
func unpackK45(q5 bool, x Register, w, s, m Mem) {
	qsOff := 16
	if q5 {
		qsOff = 48
	}
	mask := YMM()
	VMOVDQU(mask0F, mask)
	for h := range 4 {
		v, lo := YMM(), YMM()
		splitNibbles(Mem{Base: x, Disp: qsOff + 32*h}, mask, lo, v)
		if q5 {
			orQ5High(x, h, lo, v)
		}
		VMOVDQU(lo, w.Offset(64*h))
		VMOVDQU(v, w.Offset(64*h+32))
	}
	sc, mn := kScalesMins(Mem{Base: x, Disp: 4})
	scd := YMM()
	VPMOVZXBD(sc, scd)
	VMOVDQU(scd, s)
	VPMOVZXBW(mn, mn)
	lo, hi := XMM(), XMM()
	VPUNPCKLWD(mn, mn, lo) // m0 m0 m1 m1 …
	VPUNPCKHWD(mn, mn, hi)
	VMOVDQU(lo, m)
	VMOVDQU(hi, m.Offset(16))
}

// unpackQ6K unpacks a Q6_K block (ql[128], qh[64], scales[16], d): quants
// u = q+32 in 0..63, the sixteen int8 scales, and the scale pairs
// (s_2p, s_2p+1) that meet the bsum pairs in the −32·Σ s·bsum correction.
func unpackQ6K(x Register, w, s, m Mem) {
	for half := range 2 {
		for k := range 4 {
			VMOVDQU(q6Run(x, half, k), w.Offset(128*half+32*k))
		}
	}
	for i := range 2 {
		sd := YMM()
		VPMOVSXBD(Mem{Base: x, Disp: 192 + 8*i}, sd)
		VMOVDQU(sd, s.Offset(32*i))
	}
	sw := YMM()
	VPMOVSXBW(Mem{Base: x, Disp: 192}, sw)
	VMOVDQU(sw, m)
}

// unpackIQ4XS unpacks an IQ4_XS block (d, scales_h, scales_l[4], qs[128]):
// quants as their table value + 128 (1..241), the eight scales ls−32, and
// each scale twice to meet bsums 2j and 2j+1 in the −128·Σ correction.
func unpackIQ4XS(x Register, w, s, m Mem) {
	table := YMM()
	VMOVDQU(kvaluesU8, table)
	for j := range 8 {
		q := nibbles32(Mem{Base: x, Disp: 8 + 16*j})
		VPSHUFB(q, table, q)
		VMOVDQU(q, w.Offset(32*j))
	}
	sh, sl := GP32(), GP32()
	MOVWLZX(Mem{Base: x, Disp: 2}, sh)
	MOVL(Mem{Base: x, Disp: 4}, sl)
	for j := range 8 {
		ls, t := iq4XSScale(sh, sl, j)
		MOVL(ls, s.Offset(4*j))
		// The int16 pair (ls, ls).
		MOVWLZX(ls.As16(), ls)
		MOVL(ls, t)
		SHLL(U8(16), t)
		ORL(t, ls)
		MOVL(ls, m.Offset(4*j))
	}
}

// genPanelK emits func(x *byte, xstride int, p *byte, nb int, out *float32,
// outstride int): two weight rows (x, x + xstride) times a panel of sixteen
// Q8_K activation rows, the 32 dots stored at out + r + c*outstride (in
// floats).
//
// Each vpdpbusd multiplies four unsigned quants of a weight row, broadcast,
// with the same four signed quants of eight activation rows, so the lanes
// of an accumulator are eight outputs' run sums; each run's sums are scaled
// exactly (vpmulld) into the block sums isum_b, and the bsum pairs meet the
// mins or the offset correction in vpmaddwd. The float steps are those of
// the type's dot (genDotK45, or chainQ8K), lane by lane, so every output
// has the single dot's bits.
//
// The weight blocks are unpacked once per block into a stack buffer, so that
// the inner loop's weight operands are plain broadcast loads.
func genPanelK(k panelKKind, vnni bool) {
	name := "panel" + k.name + "x2x16" + setSuffix(vnni)
	// Not NOSPLIT: the frame is too large for the nosplit stack budget.
	TEXT(name, 0, "func(x *byte, xstride int, p *byte, nb int, out *float32, outstride int)")
	Doc(name+" stores at out + r + c*outstride (in floats) the dot product of nb "+k.doc+" blocks at x + r*xstride",
		"and activation row c of the Q8_K panel at p (nb blocks), for r < 2 and c < 16.")
	needs(vnni)
	runs := 64 / k.runSteps
	wbuf := AllocLocal(2 * 256)    // unpacked quants per weight row
	sbuf := AllocLocal(2 * 4 * 16) // run scales as int32 per weight row
	mbuf := AllocLocal(2 * 32)     // the eight int16 pairs per weight row
	abuf := AllocLocal(4 * 32)     // float accumulators [row][column octet]

	xstride := Load(Param("xstride"), GP64())
	xs := offsets(Load(Param("x"), GP64()), xstride, 2)
	p := Load(Param("p"), GP64())
	nb := Load(Param("nb"), GP64())
	z := zeroY()
	for i := range 4 {
		VMOVUPS(z, abuf.Offset(32*i))
	}

	mode := k.avx2
	if vnni {
		mode = vnniDots
	}
	dots := newByteDots(mode, k.umax, k.runSteps)
	Label(name + "_loop")
	TESTQ(nb, nb)
	JZ(LabelRef(name + "_done"))
	prefetchNextRows(xs, xstride, 0, k.xStride)
	for r := range 2 {
		k.unpack(xs[r], wbuf.Offset(256*r), sbuf.Offset(64*r), mbuf.Offset(32*r))
	}

	isum := zeroPanel()
	for run := range runs {
		t := dots.accumulators(4) // [2*row + column octet]
		dots.run(t, k.runSteps, func(s int, dot func(i int, w, y VecVirtual)) {
			step := k.runSteps*run + s
			ys := loadOctets(Mem{Base: p, Disp: 64 * step})
			for r := range 2 {
				w := YMM()
				VPBROADCASTD(wbuf.Offset(256*r+4*step), w)
				for o := range 2 {
					dot(2*r+o, w, ys[o])
				}
			}
		})
		for r := range 2 {
			scv := YMM()
			VPBROADCASTD(sbuf.Offset(64*r+4*run), scv)
			for o := range 2 {
				VPMULLD(scv, t[2*r+o], t[2*r+o])
				VPADDD(t[2*r+o], isum[r][o], isum[r][o])
			}
		}
	}

	// The pairs against the bsum pairs.
	psum := zeroPanel()
	for pr := range 8 {
		bs := loadOctets(Mem{Base: p, Disp: panelKSums + 64*pr})
		for r := range 2 {
			mm := YMM()
			VPBROADCASTD(mbuf.Offset(32*r+4*pr), mm)
			for o := range 2 {
				prod := YMM()
				VPMADDWD(bs[o], mm, prod)
				VPADDD(prod, psum[r][o], psum[r][o])
			}
		}
	}

	for r := range 2 {
		dx, dmn := k.blockScales(ymmWidth, xs[r])
		for o := range 2 {
			k.addBlock(ymmWidth, dx, dmn, Mem{Base: p, Disp: panelKScales + 32*o}, isum[r][o], psum[r][o], abuf.Offset(64*r+32*o))
		}
	}
	for _, x := range xs {
		ADDQ(U32(k.xStride), x)
	}
	ADDQ(U32(panelKBlock), p)
	DECQ(nb)
	JMP(LabelRef(name + "_loop"))

	Label(name + "_done")
	var accs [2][2]VecVirtual
	for r := range 2 {
		for o := range 2 {
			accs[r][o] = YMM()
			VMOVUPS(abuf.Offset(64*r+32*o), accs[r][o])
		}
	}
	o, stride := outArgs()
	storePanel(accs, o, stride)
	VZEROUPPER()
	RET()
}

// storePanel stores a panel kernel's two rows × sixteen columns, held as
// accs[row][column octet] (lane c%8 of accs[r][c/8] is row r, column c), at
// o + r + c*stride (stride in bytes), leaving o past the last column.
func storePanel(accs [2][2]VecVirtual, o, stride Register) {
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

// genPanelKZ emits the zmm wide form of genPanelK's VNNI kernel, with
// genPanelZ's signature: two weight rows times np panels (16·np activation
// rows), each zmm holding one panel's sixteen columns. The weight blocks
// are unpacked once per block as in genPanelK, and each broadcast quant
// dword then feeds np vpdpbusd on zmm instead of two on ymm: on a Zen 5
// EPYC the ymm VNNI panel ran no faster than the AVX2 one (235 against 223
// GOP/s in BenchmarkShapes), its loads and broadcasts as many as its dots.
// The integer run sums, the bsum corrections and the float steps are the
// ymm kernel's, lane for lane, so every output keeps the dot's bits.
func genPanelKZ(k panelKKind, np int) {
	name := "panel" + k.name + "x2x" + strconv.Itoa(16*np) + "ZMM"
	// Not NOSPLIT: the frame is too large for the nosplit stack budget.
	TEXT(name, 0, "func(x *byte, xstride int, p *byte, pstride int, nb int, out *float32, outstride int)")
	Doc(name+" stores at out + r + c*outstride (in floats) the dot product of nb "+k.doc+" blocks at x + r*xstride",
		"and activation row c%16 of the Q8_K panel at p + (c/16)*pstride (nb blocks), for r < 2 and c < "+strconv.Itoa(16*np)+".")
	Comment("Needs AVX512-F, -BW and -VNNI besides AVX2, FMA and F16C.")
	runs := 64 / k.runSteps
	wbuf := AllocLocal(2 * 256)     // unpacked quants per weight row
	sbuf := AllocLocal(2 * 4 * 16)  // run scales as int32 per weight row
	mbuf := AllocLocal(2 * 32)      // the eight int16 pairs per weight row
	abuf := AllocLocal(2 * np * 64) // float accumulators [row][panel]
	acc := func(r, q int) Mem { return abuf.Offset(64 * (np*r + q)) }

	// General registers are short (the unpacking takes six), so the
	// panels are addressed from one base, and the block count lives on
	// the stack.
	xstride := Load(Param("xstride"), GP64())
	xs := offsets(Load(Param("x"), GP64()), xstride, 2)
	p, pstride := Load(Param("p"), GP64()), Load(Param("pstride"), GP64())
	var pstride3 Register
	if np > 2 {
		pstride3 = GP64()
		IMUL3Q(U8(3), pstride, pstride3)
	}
	// panelMem addresses byte disp of panel q.
	panelMem := func(q, disp int) Mem {
		switch q {
		case 0:
			return Mem{Base: p, Disp: disp}
		case 3:
			return Mem{Base: p, Index: pstride3, Scale: 1, Disp: disp}
		}
		return Mem{Base: p, Index: pstride, Scale: uint8(q), Disp: disp}
	}
	nbuf := AllocLocal(8)
	{
		nb := Load(Param("nb"), GP64())
		MOVQ(nb, nbuf)
	}
	z := ZMM()
	VPXORD(z, z, z)
	for i := range 2 * np {
		VMOVUPS(z, abuf.Offset(64*i))
	}
	grid := func() [2][]VecVirtual { return [2][]VecVirtual{make([]VecVirtual, np), make([]VecVirtual, np)} }

	Label(name + "_loop")
	CMPQ(nbuf, Imm(0))
	JE(LabelRef(name + "_done"))
	prefetchNextRows(xs, xstride, 0, k.xStride)
	for r := range 2 {
		k.unpack(xs[r], wbuf.Offset(256*r), sbuf.Offset(64*r), mbuf.Offset(32*r))
	}

	isum := grid()
	for run := range runs {
		// Each run's sums start as copies of z: a zeroing xor reads its
		// register, which kept every run's sums live across the loop.
		t := grid() // [row][panel]
		for r := range 2 {
			for q := range np {
				t[r][q] = ZMM()
				VMOVDQA64(z, t[r][q])
			}
		}
		for s := range k.runSteps {
			step := k.runSteps*run + s
			ys := make([]VecVirtual, np)
			for q := range np {
				ys[q] = ZMM()
				VMOVDQU32(panelMem(q, 64*step), ys[q])
			}
			for r := range 2 {
				w := ZMM()
				VPBROADCASTD(wbuf.Offset(256*r+4*step), w)
				for q := range np {
					VPDPBUSD(ys[q], w, t[r][q])
				}
			}
		}
		for r := range 2 {
			scv := ZMM()
			VPBROADCASTD(sbuf.Offset(64*r+4*run), scv)
			for q := range np {
				VPMULLD(scv, t[r][q], t[r][q])
				if run == 0 {
					isum[r][q] = t[r][q]
				} else {
					VPADDD(t[r][q], isum[r][q], isum[r][q])
				}
			}
		}
	}

	// The pairs against the bsum pairs.
	psum := grid()
	for pr := range 8 {
		bs := make([]VecVirtual, np)
		for q := range np {
			bs[q] = ZMM()
			VMOVDQU32(panelMem(q, panelKSums+64*pr), bs[q])
		}
		for r := range 2 {
			mm := ZMM()
			VPBROADCASTD(mbuf.Offset(32*r+4*pr), mm)
			for q := range np {
				prod := ZMM()
				VPMADDWD(bs[q], mm, prod)
				if pr == 0 {
					psum[r][q] = prod
				} else {
					VPADDD(prod, psum[r][q], psum[r][q])
				}
			}
		}
	}

	for r := range 2 {
		dx, dmn := k.blockScales(zmmWidth, xs[r])
		for q := range np {
			k.addBlock(zmmWidth, dx, dmn, panelMem(q, panelKScales), isum[r][q], psum[r][q], acc(r, q))
		}
	}
	stepper(xs, k.xStride, []Register{p}, panelKBlock)(1)
	DECQ(nbuf)
	JMP(LabelRef(name + "_loop"))

	Label(name + "_done")
	o, stride := outArgs()
	storeStackPanels(np, acc, o, stride)
	VZEROUPPER()
	RET()
}

// blockScales broadcasts the weight block's scale d (and dmin, with mins)
// at x to every float lane.
func (k panelKKind) blockScales(wd width, x Register) (dx, dmn VecVirtual) {
	dx = wd.broadcastF16(Mem{Base: x, Disp: k.dm})
	if k.mins {
		dmn = wd.broadcastF16(Mem{Base: x, Disp: k.dm + 2})
	}
	return dx, dmn
}

// addBlock emits a K-quant panel's float step for one block, lane by lane
// the type's dot's: with d = dx·dy (dy the activation scales at dyMem),
// acc += f32(isum − (psum << offsetShift))·d, or with mins acc +=
// f32(isum)·d, then acc −= f32(psum)·(dmn·dy). acc is at accMem; isum and
// psum are overwritten.
func (k panelKKind) addBlock(wd width, dx, dmn VecVirtual, dyMem Mem, isum, psum VecVirtual, accMem Mem) {
	dy, d, a := wd.vec(), wd.vec(), wd.vec()
	VMOVUPS(dyMem, dy)
	VMULPS(dx, dy, d)
	if !k.mins {
		VPSLLD(U8(k.offsetShift), psum, psum)
		VPSUBD(psum, isum, isum)
	}
	VCVTDQ2PS(isum, isum)
	VMOVUPS(accMem, a)
	VFMADD231PS(isum, d, a)
	if k.mins {
		dm := wd.vec()
		VMULPS(dmn, dy, dm)
		VCVTDQ2PS(psum, psum)
		VFNMADD231PS(psum, dm, a)
	}
	VMOVUPS(a, accMem)
}

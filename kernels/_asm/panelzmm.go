package main

import (
	"strconv"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// A width is the vector width a shared unpacking step is emitted for: ymm
// (VEX encodings, so that the AVX2 set stays AVX2) or zmm (EVEX, AVX-512).
type width struct{ zmm bool }

var (
	ymmWidth = width{}
	zmmWidth = width{zmm: true}
)

func (w width) vec() VecVirtual {
	if w.zmm {
		return ZMM()
	}
	return YMM()
}

func (w width) and(a, b, dst Op) {
	if w.zmm {
		VPANDD(a, b, dst)
		return
	}
	VPAND(a, b, dst)
}

func (w width) xor(a, b, dst Op) {
	if w.zmm {
		VPXORD(a, b, dst)
		return
	}
	VPXOR(a, b, dst)
}

// broadcastF16 broadcasts the half at m to every float lane.
func (w width) broadcastF16(m Mem) VecVirtual {
	if w.zmm {
		h, z := YMM(), ZMM()
		VPBROADCASTW(m, h)
		VCVTPH2PS(h, z)
		return z
	}
	return broadcastF16(m)
}

// loadConst loads a 32-byte constant: as it is into a ymm, twice into a zmm
// (the constants are per-128-bit-lane tables and masks).
func (w width) loadConst(m Mem, dst VecVirtual) {
	if w.zmm {
		VBROADCASTI64X4(m, dst)
		return
	}
	VMOVDQU(m, dst)
}

// genPanelZ emits func(x *byte, xstride int, p *byte, pstride, nb int, out
// *float32, outstride int), the zmm form of genPanel's VNNI kernel: two
// weight rows (x, x + xstride) times two panels (p, p + pstride), 32
// activation rows, the 64 dots stored at out + r + c*outstride (in floats).
//
// Why two panels: on a 5th-gen Xeon (model 207) vpdpbusd on zmm issues as
// often as on ymm (two a cycle, 24 independent ones measured in a loop), so a
// zmm doubles the integer work per instruction; but unpacking a broadcast
// weight dword costs as much as the vpdpbusd it feeds. With one zmm (sixteen
// rows) per broadcast the kernel would gain nothing on the ymm one; with two
// panels, each unpacked dword feeds two vpdpbusd.
//
// Every output follows the ymm panel's steps (exact int32 block sums, one
// convert, one multiply of the scales, one fused multiply-add a block), so
// the bits are those of the dot.
func genPanelZ(k panelKind, np int) {
	name := "panel" + k.name + "x2x" + strconv.Itoa(16*np) + "ZMM"
	TEXT(name, NOSPLIT, "func(x *byte, xstride int, p *byte, pstride int, nb int, out *float32, outstride int)")
	Doc(name+" stores at out + r + c*outstride (in floats) the dot product of nb "+k.doc+" blocks at x + r*xstride",
		"and activation row c%16 of the panel at p + (c/16)*pstride (nb blocks), for r < 2 and c < "+strconv.Itoa(16*np)+".")
	Comment("Needs AVX512-F, -BW and -VNNI besides AVX2, FMA and F16C.")
	xstride := Load(Param("xstride"), GP64())
	xs := offsets(Load(Param("x"), GP64()), xstride, 2)
	ps := offsets(Load(Param("p"), GP64()), Load(Param("pstride"), GP64()), np)
	nb := Load(Param("nb"), GP64())
	accs := [2][]VecVirtual{make([]VecVirtual, np), make([]VecVirtual, np)} // [weight row][panel]
	for r := range 2 {
		for q := range np {
			accs[r][q] = ZMM()
			VPXORD(accs[r][q], accs[r][q], accs[r][q])
		}
	}
	consts, zero := ZMM(), ZMM()
	zmmWidth.loadConst(*k.constant, consts)
	VPXORD(zero, zero, zero)
	blockLoop2(name, nb, func(b int) {
		xo, po := b*k.xStride, b*panelBlock
		// Each block's sums start at -bias·Σy: written whole (a zeroing xor
		// reads its register, which kept every block's sums live across
		// the loop and left the allocator short of registers).
		sums := [2][]VecVirtual{make([]VecVirtual, np), make([]VecVirtual, np)}
		for q := range np {
			bias := ZMM()
			VMOVDQU32(Mem{Base: ps[q], Disp: po + panelSums}, bias)
			VPSLLD(U8(k.biasShift), bias, bias)
			for r := range 2 {
				sums[r][q] = ZMM()
				VPSUBD(bias, zero, sums[r][q])
			}
		}
		prefetchNextRows(xs, xstride, xo, k.xStride)
		var dword [2]func(int) VecVirtual
		for r := range 2 {
			dword[r] = k.unsigned(zmmWidth, xs[r], xo, consts)
		}
		for kk := range 8 {
			ys := make([]VecVirtual, np)
			for q := range np {
				ys[q] = ZMM()
				VMOVDQU32(Mem{Base: ps[q], Disp: po + 64*kk}, ys[q])
			}
			for r := range 2 {
				w := dword[r](kk)
				for q := range np {
					VPDPBUSD(ys[q], w, sums[r][q])
				}
			}
		}
		var dx [2]VecVirtual
		for r := range 2 {
			dx[r] = zmmWidth.broadcastF16(Mem{Base: xs[r], Disp: xo})
		}
		for q := range np {
			for r := range 2 {
				sm := sums[r][q]
				VCVTDQ2PS(sm, sm)
				d := ZMM()
				VMULPS(Mem{Base: ps[q], Disp: po + panelScales}, dx[r], d)
				VFMADD231PS(sm, d, accs[r][q])
			}
		}
	}, stepper(xs, k.xStride, ps, panelBlock))
	// Each panel's sixteen columns as two ymm octets, stored as the ymm
	// panel stores them; the first panel's stores leave o at the second's.
	o, stride := outArgs()
	for q := range np {
		var octs [2][2]VecVirtual
		for r := range 2 {
			for half := range 2 {
				octs[r][half] = YMM()
				VEXTRACTF64X4(U8(half), accs[r][q], octs[r][half])
			}
		}
		storePanel(octs, o, stride)
	}
	VZEROUPPER()
	RET()
}

// genPanelWideAVX2 emits the AVX2 two-panel kernel of a kind whose AVX2
// panel sums whole runs in int16 (unsignedWeights: Q4_0), with genPanelZ's
// signature: two weight rows times two panels (32 activation rows). Each
// unpacked weight dword then feeds four vpmaddubsw instead of two, which
// takes about a seventh of the panel's instructions away; the sixteen ymm
// registers hold the eight int16 run sums, so the float accumulators live
// on the stack (a load and a store a block, off the vector ports) and the
// activations are memory operands.
func genPanelWideAVX2(k panelKind) {
	if k.avx2 != unsignedWeights || 8*2*k.umax*128 > 32767 {
		panic("genPanelWideAVX2: " + k.name + " cannot sum a block's eight steps in int16")
	}
	name := "panel" + k.name + "x2x32AVX2"
	TEXT(name, NOSPLIT, "func(x *byte, xstride int, p *byte, pstride int, nb int, out *float32, outstride int)")
	Doc(name+" stores at out + r + c*outstride (in floats) the dot product of nb "+k.doc+" blocks at x + r*xstride",
		"and activation row c%16 of the panel at p + (c/16)*pstride (nb blocks), for r < 2 and c < 32.")
	abuf := AllocLocal(2 * 2 * 2 * 32) // float accumulators [row][panel][octet]
	acc := func(r, q, o int) Mem { return abuf.Offset(32 * (4*r + 2*q + o)) }
	xstride := Load(Param("xstride"), GP64())
	xs := offsets(Load(Param("x"), GP64()), xstride, 2)
	ps := offsets(Load(Param("p"), GP64()), Load(Param("pstride"), GP64()), 2)
	nb := Load(Param("nb"), GP64())
	z := zeroY()
	for i := range 8 {
		VMOVUPS(z, abuf.Offset(32*i))
	}
	mask := YMM()
	VMOVDQU(*k.constant, mask)
	Label(name + "_loop")
	TESTQ(nb, nb)
	JZ(LabelRef(name + "_done"))
	prefetchNextRows(xs, xstride, 0, k.xStride)
	var words [2][2][2]VecVirtual // [row][panel][octet]
	var dword [2]func(int) VecVirtual
	for r := range 2 {
		dword[r] = k.unsigned(ymmWidth, xs[r], 0, mask)
	}
	for kk := range 8 {
		for r := range 2 {
			w := dword[r](kk)
			for q := range 2 {
				for o := range 2 {
					t := YMM()
					VPMADDUBSW(Mem{Base: ps[q], Disp: 64*kk + 32*o}, w, t)
					if kk == 0 {
						words[r][q][o] = t
					} else {
						VPADDW(t, words[r][q][o], words[r][q][o])
					}
				}
			}
		}
	}
	ones := YMM()
	VMOVDQU(words1, ones)
	var dx [2]VecVirtual
	for r := range 2 {
		dx[r] = broadcastF16(Mem{Base: xs[r]})
	}
	for q := range 2 {
		for o := range 2 {
			bias := YMM()
			VMOVDQU(Mem{Base: ps[q], Disp: panelSums + 32*o}, bias)
			VPSLLD(U8(k.biasShift), bias, bias)
			for r := range 2 {
				sm := words[r][q][o]
				VPMADDWD(ones, sm, sm)
				VPSUBD(bias, sm, sm)
				VCVTDQ2PS(sm, sm)
				d, a := YMM(), YMM()
				VMULPS(Mem{Base: ps[q], Disp: panelScales + 32*o}, dx[r], d)
				VMOVUPS(acc(r, q, o), a)
				VFMADD231PS(sm, d, a)
				VMOVUPS(a, acc(r, q, o))
			}
		}
	}
	stepper(xs, k.xStride, ps, panelBlock)(1)
	DECQ(nb)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	o, stride := outArgs()
	for q := range 2 {
		var octs [2][2]VecVirtual
		for r := range 2 {
			for oc := range 2 {
				octs[r][oc] = YMM()
				VMOVUPS(acc(r, q, oc), octs[r][oc])
			}
		}
		storePanel(octs, o, stride)
	}
	VZEROUPPER()
	RET()
}

// prefetchNextRows prefetches the size bytes at disp of the weight rows
// len(xs) rows past xs (two or four): the rows that a prompt task takes
// next, so that its first touch of them does not wait on DRAM.
// The wide panels read each pair's rows once against 32 or 64 columns, too
// slowly for the hardware prefetchers to run ahead of a new pair: with the
// weights in DRAM rather than L1 (BenchmarkPanelStream) they ran 10-30%
// slower. A prefetch past the matrix is harmless.
func prefetchNextRows(xs []Register, xstride Register, disp, size int) {
	for _, x := range xs {
		for off := 0; off < size; off += 64 {
			PREFETCHT0(Mem{Base: x, Index: xstride, Scale: uint8(len(xs)), Disp: disp + off})
		}
	}
}

// genPanelZ4 emits the four-row form of genPanelZ's four-panel kernel,
// func(x *byte, xstride int, p *byte, pstride, nb int, out *float32,
// outstride int): four weight rows (x + r*xstride) times four panels (64
// activation rows), the 256 dots stored at out + r + c*outstride.
//
// Why four rows: the two-row kernel issues six loads (four panel steps,
// two weight broadcasts) for eight vpdpbusd, and on a Zen 5 EPYC, which
// issues two vpdpbusd on zmm a cycle, the loads bounded it at about half
// of that. Four rows issue eight for sixteen. The sixteen block sums then
// fill half the register file, so the float accumulators live on the stack
// (a load and a store each a block, against 128 vpdpbusd).
func genPanelZ4(k panelKind) {
	const np, nr = 4, 4
	name := "panel" + k.name + "x4x64ZMM"
	// Not NOSPLIT: the frame is too large for the nosplit stack budget.
	TEXT(name, 0, "func(x *byte, xstride int, p *byte, pstride int, nb int, out *float32, outstride int)")
	Doc(name+" stores at out + r + c*outstride (in floats) the dot product of nb "+k.doc+" blocks at x + r*xstride",
		"and activation row c%16 of the panel at p + (c/16)*pstride (nb blocks), for r < 4 and c < 64.")
	Comment("Needs AVX512-F, -BW and -VNNI besides AVX2, FMA and F16C.")
	abuf := AllocLocal(nr * np * 64) // float accumulators [row][panel]
	acc := func(r, q int) Mem { return abuf.Offset(64 * (np*r + q)) }
	xstride := Load(Param("xstride"), GP64())
	xs := offsets(Load(Param("x"), GP64()), xstride, nr)
	ps := offsets(Load(Param("p"), GP64()), Load(Param("pstride"), GP64()), np)
	nb := Load(Param("nb"), GP64())
	consts, zero := ZMM(), ZMM()
	zmmWidth.loadConst(*k.constant, consts)
	VPXORD(zero, zero, zero)
	for i := range nr * np {
		VMOVUPS(zero, abuf.Offset(64*i))
	}
	Label(name + "_loop")
	TESTQ(nb, nb)
	JZ(LabelRef(name + "_done"))
	prefetchNextRows(xs, xstride, 0, k.xStride)
	sums := make([][]VecVirtual, nr) // [row][panel], each starting at -bias·Σy
	for r := range nr {
		sums[r] = make([]VecVirtual, np)
	}
	for q := range np {
		bias := ZMM()
		VMOVDQU32(Mem{Base: ps[q], Disp: panelSums}, bias)
		VPSLLD(U8(k.biasShift), bias, bias)
		for r := range nr {
			sums[r][q] = ZMM()
			VPSUBD(bias, zero, sums[r][q])
		}
	}
	dword := make([]func(int) VecVirtual, nr)
	for r := range nr {
		dword[r] = k.unsigned(zmmWidth, xs[r], 0, consts)
	}
	for kk := range 8 {
		ys := make([]VecVirtual, np)
		for q := range np {
			ys[q] = ZMM()
			VMOVDQU32(Mem{Base: ps[q], Disp: 64 * kk}, ys[q])
		}
		for r := range nr {
			w := dword[r](kk)
			for q := range np {
				VPDPBUSD(ys[q], w, sums[r][q])
			}
		}
	}
	for r := range nr {
		dx := zmmWidth.broadcastF16(Mem{Base: xs[r]})
		for q := range np {
			sm, d, a := sums[r][q], ZMM(), ZMM()
			VCVTDQ2PS(sm, sm)
			VMULPS(Mem{Base: ps[q], Disp: panelScales}, dx, d)
			VMOVUPS(acc(r, q), a)
			VFMADD231PS(sm, d, a)
			VMOVUPS(a, acc(r, q))
		}
	}
	stepper(xs, k.xStride, ps, panelBlock)(1)
	DECQ(nb)
	JMP(LabelRef(name + "_loop"))

	Label(name + "_done")
	// Rows 0-1 and 2-3 as two-row panels, the second two floats along.
	o, stride := outArgs()
	o2 := GP64()
	MOVQ(o, o2)
	ADDQ(U8(8), o2)
	storeStackPanels(np, func(r, q int) Mem { return acc(r, q) }, o, stride)
	storeStackPanels(np, func(r, q int) Mem { return acc(2+r, q) }, o2, stride)
	VZEROUPPER()
	RET()
}

// storeStackPanels stores np panels of two rows' zmm float accumulators
// kept on the stack (acc(r, q): row r < 2, panel q) as storePanel does, at
// o + r + c*stride, leaving o past the last column.
func storeStackPanels(np int, acc func(r, q int) Mem, o, stride Register) {
	for q := range np {
		var octs [2][2]VecVirtual
		for r := range 2 {
			for half := range 2 {
				octs[r][half] = YMM()
				VMOVUPS(acc(r, q).Offset(32*half), octs[r][half])
			}
		}
		storePanel(octs, o, stride)
	}
}

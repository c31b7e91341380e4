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
	xs := offsets(Load(Param("x"), GP64()), Load(Param("xstride"), GP64()), 2)
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
			h := YMM()
			dx[r] = ZMM()
			VPBROADCASTW(Mem{Base: xs[r], Disp: xo}, h)
			VCVTPH2PS(h, dx[r])
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
	}, func(blocks int) {
		for _, x := range xs {
			ADDQ(U32(blocks*k.xStride), x)
		}
		for _, p := range ps {
			ADDQ(U32(blocks*panelBlock), p)
		}
	})
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

package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The block dots of the common weight types come in two shapes generated from
// one description: one activation row (returning float32) and four activation
// rows sharing each weight decode (storing four float32 into out). Every column
// runs the same float operations in the same order in both shapes, so the
// four-row kernel gives bit-identical results to four single calls.

// colArgs declares the signature and loads x, the per-column y pointers and nb.
func colArgs(name string, ncols int, doc string) (x Register, ys []Register, nb Register) {
	if ncols == 1 {
		TEXT(name, NOSPLIT, "func(x, y *byte, nb int) float32")
		Doc(name + " returns the dot product of " + doc + ".")
	} else {
		TEXT(name, NOSPLIT, "func(x, y *byte, ystride, nb int, out *float32, outstride int)")
		Doc(name+" stores at out + c*outstride (in floats) the dot product of "+doc+",", "for the four activation rows at y + c*ystride (in bytes).")
	}
	x = Load(Param("x"), GP64())
	y := Load(Param("y"), GP64())
	ys = []Register{y}
	if ncols > 1 {
		stride := Load(Param("ystride"), GP64())
		for c := 1; c < ncols; c++ {
			yc := GP64()
			MOVQ(ys[c-1], yc)
			ADDQ(stride, yc)
			ys = append(ys, yc)
		}
	}
	nb = Load(Param("nb"), GP64())
	return x, ys, nb
}

// colReturn reduces each column's accumulator and returns or stores it.
func colReturn(ncols int, accs []VecVirtual) {
	if ncols == 1 {
		s := hsum(accs[0])
		VZEROUPPER()
		Store(s, ReturnIndex(0))
		RET()
		return
	}
	out, stride := Load(Param("out"), GP64()), Load(Param("outstride"), GP64())
	SHLQ(U8(2), stride)
	for c, acc := range accs {
		s := hsum(acc)
		if c > 0 {
			ADDQ(stride, out)
		}
		VMOVSS(s, Mem{Base: out})
	}
	VZEROUPPER()
	RET()
}

func advance(x Register, xStride int, ys []Register, yStride int, nb Register, blocks int) {
	ADDQ(U32(blocks*xStride), x)
	for _, y := range ys {
		ADDQ(U32(blocks*yStride), y)
	}
	SUBQ(U32(blocks), nb)
}

func suffix(ncols int) string {
	if ncols == 1 {
		return "AVX2"
	}
	return fmt.Sprintf("x%dAVX2", ncols)
}

// genDotQ8Family emits Q8_0·Q8_0 or Q4_0·Q8_0: two blocks per iteration
// into two accumulators per column, then one block, then the two summed.
func genDotQ8Family(q4 bool, ncols int) {
	base, xStride, doc := "dotQ8_0Q8_0", 34, "nb Q8_0 blocks at x and nb Q8_0 blocks at y"
	if q4 {
		base, xStride, doc = "dotQ4_0Q8_0", 18, "nb Q4_0 blocks at x and nb Q8_0 blocks at y"
	}
	name := base + suffix(ncols)
	x, ys, nb := colArgs(name, ncols, doc)
	ones := ones16()
	acc0, acc1 := make([]VecVirtual, ncols), make([]VecVirtual, ncols)
	for c := range ncols {
		acc0[c], acc1[c] = zeroY(), zeroY()
	}
	block := func(xo int, accs []VecVirtual) {
		dx := broadcastF16(Mem{Base: x, Disp: xo})
		q := YMM()
		if q4 {
			hi := XMM()
			VMOVDQU(Mem{Base: x, Disp: xo + 2}, q.AsX())
			VPSRLW(U8(4), q.AsX(), hi)
			VINSERTI128(U8(1), hi, q, q)
			VPAND(mask0F, q, q)
			VPSUBB(bytes8, q, q)
		} else {
			VMOVDQU(Mem{Base: x, Disp: xo + 2}, q)
		}
		ax := YMM()
		VPSIGNB(q, q, ax)
		yo := 0
		if xo != 0 {
			yo = 34
		}
		for c := range ncols {
			d := broadcastF16(Mem{Base: ys[c], Disp: yo})
			VMULPS(d, dx, d) // dx*dy, the order of the single kernel
			sy := YMM()
			VMOVDQU(Mem{Base: ys[c], Disp: yo + 2}, sy)
			VPSIGNB(q, sy, sy)
			VPMADDUBSW(sy, ax, sy)
			VPMADDWD(ones, sy, sy)
			VCVTDQ2PS(sy, sy)
			VFMADD231PS(sy, d, accs[c])
		}
	}
	Label(name + "_loop2")
	CMPQ(nb, Imm(2))
	JL(LabelRef(name + "_loop1"))
	block(0, acc0)
	block(xStride, acc1)
	advance(x, xStride, ys, 34, nb, 2)
	JMP(LabelRef(name + "_loop2"))
	Label(name + "_loop1")
	TESTQ(nb, nb)
	JZ(LabelRef(name + "_done"))
	block(0, acc0)
	Label(name + "_done")
	for c := range ncols {
		VADDPS(acc1[c], acc0[c], acc0[c])
	}
	colReturn(ncols, acc0)
}

// genDotK45 emits Q4_K·Q8_K (q5=false) or Q5_K·Q8_K.
func genDotK45(q5 bool, ncols int) {
	base, xStride, qsOff, doc := "dotQ4_KQ8_K", 144, 16, "nb Q4_K blocks at x and nb Q8_K blocks at y"
	if q5 {
		base, xStride, qsOff, doc = "dotQ5_KQ8_K", 176, 48, "nb Q5_K blocks at x and nb Q8_K blocks at y"
	}
	name := base + suffix(ncols)
	x, ys, nb := colArgs(name, ncols, doc)
	accs := make([]VecVirtual, ncols)
	for c := range ncols {
		accs[c] = zeroY()
	}
	Label(name + "_loop")
	TESTQ(nb, nb)
	JZ(LabelRef(name + "_done"))

	dminx := broadcastF16(Mem{Base: x, Disp: 2})
	sc, mn := kScalesMins(Mem{Base: x, Disp: 4})
	VPMOVZXBW(mn, mn)
	// Mins against the pairwise sums of bsums: acc -= dmin*dy * Σ m_j (bsum pairs).
	for c := range ncols {
		dy, dmin := YMM(), YMM()
		VBROADCASTSS(Mem{Base: ys[c]}, dy)
		VMULPS(dy, dminx, dmin)
		bs, bsHi, m := YMM(), XMM(), YMM()
		VMOVDQU(Mem{Base: ys[c], Disp: 260}, bs)
		VEXTRACTI128(U8(1), bs, bsHi)
		VPHADDW(bsHi, bs.AsX(), bsHi)
		VPXOR(m, m, m) // a full write first, so the allocator sees m dead before
		VPMADDWD(bsHi, mn, m.AsX())
		VCVTDQ2PS(m, m)
		VFNMADD231PS(m, dmin, accs[c])
	}

	scales := YMM()
	VPXOR(scales, scales, scales)
	VPMOVZXBW(sc, scales.AsX())
	VINSERTI128(U8(1), scales.AsX(), scales, scales)
	sumi := make([]VecVirtual, ncols)
	for c := range ncols {
		sumi[c] = YMM()
		VPXOR(sumi[c], sumi[c], sumi[c])
	}
	for k := 0; k < 4; k++ {
		lo, hi := YMM(), YMM()
		VMOVDQU(Mem{Base: x, Disp: qsOff + 32*k}, hi)
		VPAND(mask0F, hi, lo)
		VPSRLW(U8(4), hi, hi)
		VPAND(mask0F, hi, hi)
		if q5 {
			for half, v := range []VecVirtual{lo, hi} {
				j := 2*k + half
				t := YMM()
				VMOVDQU(Mem{Base: x, Disp: 16}, t) // qh
				if j <= 4 {
					VPSLLW(U8(4-j), t, t)
				} else {
					VPSRLW(U8(j-4), t, t)
				}
				VPAND(mask10, t, t)
				VPOR(t, v, v)
			}
		}
		for half, v := range []VecVirtual{lo, hi} {
			s := YMM()
			VPSHUFB(wordShuf.Offset(32*(2*k+half)), scales, s)
			for c := range ncols {
				t := YMM()
				VPMADDUBSW(Mem{Base: ys[c], Disp: 4 + 64*k + 32*half}, v, t)
				VPMADDWD(s, t, t)
				VPADDD(t, sumi[c], sumi[c])
			}
		}
	}
	dx := broadcastF16(Mem{Base: x})
	for c := range ncols {
		d := YMM()
		VBROADCASTSS(Mem{Base: ys[c]}, d)
		VMULPS(d, dx, d)
		VCVTDQ2PS(sumi[c], sumi[c])
		VFMADD231PS(sumi[c], d, accs[c])
	}
	advance(x, xStride, ys, 292, nb, 1)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	colReturn(ncols, accs)
}

// genDotQ6K emits Q6_K·Q8_K.
func genDotQ6K(ncols int) {
	name := "dotQ6_KQ8_K" + suffix(ncols)
	x, ys, nb := colArgs(name, ncols, "nb Q6_K blocks at x and nb Q8_K blocks at y")
	accs := make([]VecVirtual, ncols)
	for c := range ncols {
		accs[c] = zeroY()
	}
	Label(name + "_loop")
	TESTQ(nb, nb)
	JZ(LabelRef(name + "_done"))

	sc16 := YMM()
	VPMOVSXBW(Mem{Base: x, Disp: 192}, sc16)
	// The -32 offset of the quants, taken out once per column:
	// 32 * Σ_g scale_g * bsum_g, subtracted from the integer sum.
	sumi := make([]VecVirtual, ncols)
	for c := range ncols {
		sumi[c] = YMM()
		VPMADDWD(Mem{Base: ys[c], Disp: 260}, sc16, sumi[c])
		VPSLLD(U8(5), sumi[c], sumi[c])
		VPSUBD(sumi[c], zeroY(), sumi[c]) // start from -correction
	}
	for half := 0; half < 2; half++ {
		scl := YMM()
		VPERM2I128(U8(0x11*half), sc16, sc16, scl)
		for k := 0; k < 4; k++ {
			q, t := YMM(), YMM()
			VMOVDQU(Mem{Base: x, Disp: 64*half + 32*(k&1)}, q)
			if k >= 2 {
				VPSRLW(U8(4), q, q)
			}
			VPAND(mask0F, q, q)
			// High bits 2k,2k+1 of qh moved to bits 4,5.
			VMOVDQU(Mem{Base: x, Disp: 128 + 32*half}, t)
			switch {
			case k < 2:
				VPSLLW(U8(4-2*k), t, t)
			case k == 3:
				VPSRLW(U8(2), t, t)
			}
			VPAND(mask30, t, t)
			VPOR(t, q, q)
			s := YMM()
			VPSHUFB(wordShuf2.Offset(32*k), scl, s)
			for c := range ncols {
				p := YMM()
				VPMADDUBSW(Mem{Base: ys[c], Disp: 4 + 128*half + 32*k}, q, p)
				VPMADDWD(s, p, p)
				VPADDD(p, sumi[c], sumi[c])
			}
		}
	}
	dx := broadcastF16(Mem{Base: x, Disp: 208})
	for c := range ncols {
		d := YMM()
		VBROADCASTSS(Mem{Base: ys[c]}, d)
		VMULPS(d, dx, d)
		VCVTDQ2PS(sumi[c], sumi[c])
		VFMADD231PS(sumi[c], d, accs[c])
	}
	advance(x, 210, ys, 292, nb, 1)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	colReturn(ncols, accs)
}

func genMulti() {
	for _, n := range []int{1, 4} {
		genDotQ8Family(false, n)
		genDotQ8Family(true, n)
		genDotK45(false, n)
		genDotK45(true, n)
		genDotQ6K(n)
	}
}

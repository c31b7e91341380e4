// Command _asm generates the AVX2/FMA/F16C kernels of package kernels with avo.
// Run through go generate in package kernels.
package main

import (
	"github.com/llqt/llqt/formats/block"
	"os"
	"strconv"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

var (
	mask0F Mem // 32 × 0x0f
	mask30 Mem // 32 × 0x30
	mask10 Mem // 32 × 0x10
	bytes8 Mem // 32 × 0x08
	// shiftHiLane is eight dword shift counts, 0 in the low 128-bit lane and
	// 4 in the high one (vpsrlvd: a block's high nibbles in one step).
	shiftHiLane Mem
	// iq4ScaleShifts is the left shifts that isolate the eight IQ4_XS
	// scales' low nibbles (28−4j), then their high bit pairs (30−2j); see
	// iq4XSScalePairs. dwords32 is eight int32 32s.
	iq4ScaleShifts, dwords32 Mem
	wordShuf                 Mem // 8 masks of 32 bytes: mask j broadcasts int16 j to all 16 words
	wordShuf2                Mem // 4 masks: mask k puts word 2k in the low lane, word 2k+1 in the high lane
	mask03                   Mem // 32 × 0x03
	mask04                   Mem // 32 × 0x04
	maskF0                   Mem // 32 × 0xf0
	words32                  Mem // 16 × int16 32
	qhShuf                   Mem // spreads the 4 bytes of a dword: byte i of a lane gets byte i/8 … (see bitsToBytes)
	bitSelect                Mem // byte i has every bit set except bit i%8
	kvalues                  Mem // IQ4_NL's 16 values, twice
	absMask                  Mem // 8 × 0x7fffffff
	packPerm                 Mem // dword order that undoes vpackss lane interleaving
	f127                     Mem // float32 127
	f1                       Mem // float32 1
	i127                     Mem // 8 × int32 127
)

func constants() {
	fill := func(name string, v byte) Mem {
		m := GLOBL(name, RODATA|NOPTR)
		for i := 0; i < 32; i++ {
			DATA(i, U8(v))
		}
		return m
	}
	mask0F = fill("mask0F", 0x0f)
	mask30 = fill("mask30", 0x30)
	mask10 = fill("mask10", 0x10)
	bytes8 = fill("bytes8", 0x08)
	mask03 = fill("mask03", 0x03)
	mask04 = fill("mask04", 0x04)
	maskF0 = fill("maskF0", 0xf0)
	iq4ScaleShifts = GLOBL("iq4ScaleShifts", RODATA|NOPTR)
	for j := range 8 {
		DATA(4*j, U32(28-4*j))
	}
	for j := range 8 { // the assembler wants offsets in order
		DATA(32+4*j, U32(30-2*j))
	}
	dwords32 = GLOBL("dwords32", RODATA|NOPTR)
	for j := range 8 {
		DATA(4*j, U32(32))
	}
	shiftHiLane = GLOBL("shiftHiLane", RODATA|NOPTR)
	for i := range 8 {
		DATA(4*i, U32(4*(i/4)))
	}
	words32 = GLOBL("words32", RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		DATA(2*i, U16(32))
	}
	qhShuf = GLOBL("qhShuf", RODATA|NOPTR)
	for i := 0; i < 32; i++ {
		DATA(i, U8(i/8))
	}
	bitSelect = GLOBL("bitSelect", RODATA|NOPTR)
	for i := 0; i < 32; i++ {
		DATA(i, U8(^(byte(1) << (i % 8))))
	}
	kvalues = GLOBL("kvalues", RODATA|NOPTR)
	for i := range 32 {
		DATA(i, U8(byte(block.IQ4NLValues[i%16])))
	}
	absMask = GLOBL("absMask", RODATA|NOPTR)
	for i := 0; i < 8; i++ {
		DATA(4*i, U32(0x7fffffff))
	}
	i127 = GLOBL("i127", RODATA|NOPTR)
	for i := 0; i < 8; i++ {
		DATA(4*i, U32(127))
	}
	packPerm = GLOBL("packPerm", RODATA|NOPTR)
	for i, v := range []uint32{0, 4, 1, 5, 2, 6, 3, 7} {
		DATA(4*i, U32(v))
	}
	f127 = GLOBL("f127", RODATA|NOPTR)
	DATA(0, F32(127))
	f1 = GLOBL("f1", RODATA|NOPTR)
	DATA(0, F32(1))
	iq2Constants()
	rowsZConstants()
	wordShuf = GLOBL("wordShuf", RODATA|NOPTR)
	for j := 0; j < 8; j++ {
		for i := 0; i < 16; i++ {
			DATA(32*j+2*i, U8(2*j))
			DATA(32*j+2*i+1, U8(2*j+1))
		}
	}
	wordShuf2 = GLOBL("wordShuf2", RODATA|NOPTR)
	for k := 0; k < 4; k++ {
		for i := 0; i < 16; i++ {
			w := 2 * k
			if i >= 8 {
				w = 2*k + 1
			}
			DATA(32*k+2*i, U8(2*w))
			DATA(32*k+2*i+1, U8(2*w+1))
		}
	}
	iq3Constants()
}

func main() {
	if v := os.Getenv("PREFETCH_DIST"); v != "" {
		prefetchDist, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("PREFETCH_Q8_DIST"); v != "" {
		prefetchQ8Dist, _ = strconv.Atoi(v)
	}
	ConstraintExpr("!purego")
	constants()
	genDotF32()
	genDotF16F32()
	genAxpyF16()
	genF16ToF32()
	genF32ToF16()
	genBF16ToF32()
	genMulti()
	genTernary()
	genIQ1()
	genMultiFloat()
	genQuantizeQ8(false)
	genQuantizeQ8(true)
	genQuantizeQ8K()
	genRoundBF16()
	genWeightedSumF16()
	genExpShifted()
	genSiLUMul()
	genAMX()
	Generate()
}

// paramMem is the argument slot of the named parameter, for values used
// too seldom to hold a register.
func paramMem(name string) Mem {
	b, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// hsum returns an xmm whose lane 0 holds the sum of the 8 floats of y.
func hsum(y VecVirtual) Register { return hreduce(y, VADDPS, VADDSS) }

// hmax returns an xmm whose lane 0 holds the largest of the 8 floats of y.
func hmax(y VecVirtual) Register { return hreduce(y, VMAXPS, VMAXSS) }

// hreduce folds the 8 floats of y into lane 0 of its xmm half with the
// packed and then the scalar form of one operation: halves, quarters, pairs.
func hreduce(y VecVirtual, packed, scalar func(ops ...Op)) Register {
	x := y.AsX()
	t := XMM()
	VEXTRACTF128(U8(1), y, t)
	packed(t, x, x)
	VMOVHLPS(x, x, t)
	packed(t, x, x)
	VMOVSHDUP(x, t)
	scalar(t, x, x)
	return x
}

// hsum4 sums the 4 floats of x into lane 0.
func hsum4(x Register) Register {
	t := XMM()
	VMOVHLPS(x, x, t)
	VADDPS(t, x, x)
	VMOVSHDUP(x, t)
	VADDSS(t, x, x)
	return x
}

// zeroX returns a zeroed xmm.
func zeroX() VecVirtual {
	x := XMM()
	VXORPS(x, x, x)
	return x
}

// zeroY returns a zeroed ymm.
func zeroY() VecVirtual {
	y := YMM()
	VXORPS(y, y, y)
	return y
}

// floatLoop emits the common shape of the float kernels: a main loop over
// 32 elements with four accumulators, a loop over 8, and a scalar tail.
// body8 handles 8 elements at offset i (in elements) and accumulates into acc;
// tail1 handles one element into the scalar accumulator.
func floatLoop(name string, n Register, ptrs []Register, sizes []int, body8 func(acc VecVirtual, i int), tail1 func(acc VecVirtual)) Register {
	accs := []VecVirtual{zeroY(), zeroY(), zeroY(), zeroY()}
	advance := func(elems int) {
		for k, p := range ptrs {
			ADDQ(Imm(uint64(elems*sizes[k])), p)
		}
		SUBQ(Imm(uint64(elems)), n)
	}
	Label(name + "_loop32")
	CMPQ(n, Imm(32))
	JL(LabelRef(name + "_loop8"))
	for k := 0; k < 4; k++ {
		body8(accs[k], 8*k)
	}
	advance(32)
	JMP(LabelRef(name + "_loop32"))
	Label(name + "_loop8")
	CMPQ(n, Imm(8))
	JL(LabelRef(name + "_tail"))
	body8(accs[0], 0)
	advance(8)
	JMP(LabelRef(name + "_loop8"))
	Label(name + "_tail")
	VADDPS(accs[1], accs[0], accs[0])
	VADDPS(accs[3], accs[2], accs[2])
	VADDPS(accs[2], accs[0], accs[0])
	s := hsum(accs[0])
	tacc := zeroX()
	Label(name + "_tail1")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	tail1(tacc)
	advance(1)
	JMP(LabelRef(name + "_tail1"))
	Label(name + "_done")
	VADDSS(tacc, s, s)
	return s
}

// loadF16x1 loads the half at m into lane 0 of a fresh xmm as float32.
func loadF16x1(m Mem) VecVirtual {
	r := GP32()
	MOVWLZX(m, r)
	x := XMM()
	VMOVD(r, x)
	VCVTPH2PS(x, x)
	return x
}

func genDotF32() {
	genDotFloat(floatKinds[0], "dotF32AVX2", "f32", "func(a, b *float32, n int) float32", "Σ a[i]*b[i]")
}

func genDotF16F32() {
	genDotFloat(floatKinds[1], "dotF16F32AVX2", "f16f32", "func(a *byte, b *float32, n int) float32", "Σ f16(a[i])*b[i]")
}

// genDotFloat emits the one-row dot of n weights of kind k at a with n
// float32 at b, returning sum (the doc's formula) through floatLoop's
// accumulators.
func genDotFloat(k floatKind, name, label, sig, sum string) {
	TEXT(name, NOSPLIT, sig)
	Doc(name + " returns " + sum + " for i < n.")
	a, b, n := Load(Param("a"), GP64()), Load(Param("b"), GP64()), Load(Param("n"), GP64())
	s := floatLoop(label, n, []Register{a, b}, []int{k.size, 4}, func(acc VecVirtual, i int) {
		t := k.load8(Mem{Base: a, Disp: k.size * i})
		VFMADD231PS(Mem{Base: b, Disp: 4 * i}, t, acc)
	}, func(acc VecVirtual) {
		t := k.load1(Mem{Base: a})
		VFMADD231SS(Mem{Base: b}, t, acc)
	})
	returnFloat(s)
}

func genAxpyF16() {
	TEXT("axpyF16AVX2", NOSPLIT, "func(y *float32, alpha float32, x *byte, n int)")
	Doc("axpyF16AVX2 computes y[i] += alpha*f16(x[i]) for i < n.")
	y, x, n := Load(Param("y"), GP64()), Load(Param("x"), GP64()), Load(Param("n"), GP64())
	// Broadcast straight from the argument slot: avo's Load of a float32
	// would emit a legacy-SSE MOVSS, and this function runs VEX code.
	alpha := YMM()
	VBROADCASTSS(paramMem("alpha"), alpha)
	elementLoop("axpy_loop8", "axpy", n, x, y, 2, 4, func() {
		t, u := YMM(), YMM()
		VCVTPH2PS(Mem{Base: x}, t)
		VMOVUPS(Mem{Base: y}, u)
		VFMADD231PS(t, alpha, u)
		VMOVUPS(u, Mem{Base: y})
	}, func() {
		h := loadF16x1(Mem{Base: x})
		v := XMM()
		VMOVSS(Mem{Base: y}, v)
		VFMADD231SS(h, alpha.AsX(), v)
		VMOVSS(v, Mem{Base: y})
	})
}

func genF16ToF32() {
	genConvert("f16ToF32AVX2", "func(dst *float32, src *byte, n int)", "converts n halves at src to floats at dst.", "h2f", 2, 4, func(dst, src Register) {
		t := YMM()
		VCVTPH2PS(Mem{Base: src}, t)
		VMOVUPS(t, Mem{Base: dst})
	}, func(dst, src Register) {
		h := loadF16x1(Mem{Base: src})
		VMOVSS(h, Mem{Base: dst})
	})
}

func genF32ToF16() {
	genConvert("f32ToF16AVX2", "func(dst *byte, src *float32, n int)", "converts n floats at src to halves at dst, rounding to nearest even.", "f2h", 4, 2, func(dst, src Register) {
		t := YMM()
		VMOVUPS(Mem{Base: src}, t)
		VCVTPS2PH(U8(0), t, Mem{Base: dst})
	}, func(dst, src Register) {
		x := XMM()
		VMOVSS(Mem{Base: src}, x)
		VCVTPS2PH(U8(0), x, x)
		r := GP32()
		VMOVD(x, r)
		MOVW(r.As16(), Mem{Base: dst})
	})
}

func genBF16ToF32() {
	genConvert("bf16ToF32AVX2", "func(dst *float32, src *byte, n int)", "converts n bfloat16 values at src to floats at dst.", "b2f", 2, 4, func(dst, src Register) {
		t := YMM()
		VPMOVZXWD(Mem{Base: src}, t)
		VPSLLD(U8(16), t, t)
		VMOVDQU(t, Mem{Base: dst})
	}, func(dst, src Register) {
		r := GP32()
		MOVWLZX(Mem{Base: src}, r)
		SHLL(U8(16), r)
		MOVL(r, Mem{Base: dst})
	})
}

// genConvert emits an element-wise conversion func(dst, src, n) (sig gives
// the pointer types) of srcSize-byte elements to dstSize-byte ones:
// body8 converts eight elements, body1 one (see elementLoop); label
// prefixes the loop labels.
func genConvert(name, sig, doc, label string, srcSize, dstSize int, body8, body1 func(dst, src Register)) {
	TEXT(name, NOSPLIT, sig)
	Doc(name + " " + doc)
	dst, src, n := Load(Param("dst"), GP64()), Load(Param("src"), GP64()), Load(Param("n"), GP64())
	elementLoop(label+"_loop", label, n, src, dst, srcSize, dstSize, func() { body8(dst, src) }, func() { body1(dst, src) })
}

// elementLoop emits the loop of an element-wise kernel over n elements and
// its return: eight at a time with body8 (from label loop), then one at a
// time with body1, advancing src and dst by srcSize and dstSize bytes per
// element. name prefixes the tail and done labels.
func elementLoop(loop, name string, n, src, dst Register, srcSize, dstSize int, body8, body1 func()) {
	Label(loop)
	CMPQ(n, Imm(8))
	JL(LabelRef(name + "_tail"))
	body8()
	ADDQ(Imm(uint64(8*srcSize)), src)
	ADDQ(Imm(uint64(8*dstSize)), dst)
	SUBQ(Imm(8), n)
	JMP(LabelRef(loop))
	Label(name + "_tail")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	body1()
	ADDQ(Imm(uint64(srcSize)), src)
	ADDQ(Imm(uint64(dstSize)), dst)
	DECQ(n)
	JMP(LabelRef(name + "_tail"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// moveBits shifts the 32-bit r so that its bit from lands at bit to: right
// when from > to, left when from < to, no instruction when they are equal.
// The packed scale and index fields of the IQ formats sit at bit offsets
// that depend on the unrolled loop's index.
func moveBits(r Register, from, to int) {
	if from > to {
		SHRL(U8(from-to), r)
	} else if from < to {
		SHLL(U8(to-from), r)
	}
}

// broadcastF16 returns a ymm holding the half at m, as float32, in all lanes.
func broadcastF16(m Mem) VecVirtual {
	y := YMM()
	VPBROADCASTW(m, y.AsX())
	VCVTPH2PS(y.AsX(), y)
	return y
}

// ones16 returns a ymm of int16 ones.
func ones16() VecVirtual {
	y := YMM()
	VPCMPEQW(y, y, y)
	VPSRLW(U8(15), y, y)
	return y
}

// signedDot32 accumulates d * Σ x[i]*y[i] over 32 signed bytes into acc,
// using |x| as the unsigned operand of vpmaddubsw and y with the sign of x.
func signedDot32(x VecVirtual, y Op, d, ones, acc VecVirtual) {
	ax, sy := YMM(), YMM()
	if m, ok := y.(Mem); ok {
		yy := YMM()
		VMOVDQU(m, yy)
		y = yy
	}
	VPSIGNB(x, x, ax)
	VPSIGNB(x, y, sy)
	VPMADDUBSW(sy, ax, ax)
	VPMADDWD(ones, ax, ax)
	VCVTDQ2PS(ax, ax)
	VFMADD231PS(ax, d, acc)
}

// blockLoop emits a loop over nb blocks, two per iteration with separate
// accumulators, then one.
func blockLoop(name string, x, y, nb Register, xStride, yStride int, body func(xo, yo int, acc VecVirtual)) VecVirtual {
	acc0, acc1 := zeroY(), zeroY()
	Label(name + "_loop2")
	CMPQ(nb, Imm(2))
	JL(LabelRef(name + "_loop1"))
	body(0, 0, acc0)
	body(xStride, yStride, acc1)
	ADDQ(Imm(uint64(2*xStride)), x)
	ADDQ(Imm(uint64(2*yStride)), y)
	SUBQ(Imm(2), nb)
	JMP(LabelRef(name + "_loop2"))
	Label(name + "_loop1")
	TESTQ(nb, nb)
	JZ(LabelRef(name + "_done"))
	body(0, 0, acc0)
	Label(name + "_done")
	VADDPS(acc1, acc0, acc0)
	return acc0
}

// kScalesMins unpacks the 12 packed scale bytes of a Q4_K/Q5_K block at m into
// an xmm of 8 scale bytes and an xmm of 8 min bytes (ggml's utmp shuffle).
func kScalesMins(m Mem) (sc, mn VecVirtual) {
	a, b, c, t := GP64(), GP64(), GP64(), GP64()
	MOVL(m, a.As32())
	MOVL(m.Offset(4), b.As32())
	MOVL(m.Offset(8), c.As32())
	// mins hi word: ((c>>4)&0x0f0f0f0f) | (((b>>6)&0x03030303)<<4)
	hiMin, u := GP64(), GP64()
	MOVL(c.As32(), hiMin.As32())
	SHRL(U8(4), hiMin.As32())
	ANDL(U32(0x0f0f0f0f), hiMin.As32())
	orTopBits(hiMin, b, u)
	// mins lo word: b & 0x3f3f3f3f
	ANDL(U32(0x3f3f3f3f), b.As32())
	SHLQ(U8(32), hiMin)
	ORQ(b, hiMin)
	// scales hi word: (c & 0x0f0f0f0f) | (((a>>6)&0x03030303)<<4)
	ANDL(U32(0x0f0f0f0f), c.As32())
	orTopBits(c, a, t)
	// scales lo word: a & 0x3f3f3f3f
	ANDL(U32(0x3f3f3f3f), a.As32())
	SHLQ(U8(32), c)
	ORQ(a, c)
	sc, mn = XMM(), XMM()
	VMOVQ(c, sc) // VEX, never legacy SSE: Intel cores stall on SSE↔AVX transitions
	VMOVQ(hiMin, mn)
	return sc, mn
}

// orTopBits ORs into the low dword of dst bits 6-7 of each byte of src's
// low dword, moved to bits 4-5: the top two bits of scales and mins 4-7
// in kScalesMins' packing. scratch is overwritten.
func orTopBits(dst, src, scratch GPVirtual) {
	MOVL(src.As32(), scratch.As32())
	SHRL(U8(6), scratch.As32())
	ANDL(U32(0x03030303), scratch.As32())
	SHLL(U8(4), scratch.As32())
	ORL(scratch.As32(), dst.As32())
}

// laneTable emits a read-only table of 32-byte rows, row i holding
// vals[i] (size bytes: 4 or 8) in every lane, for full-width memory
// operands.
func laneTable(name string, vals []uint64, size int) Mem {
	m := GLOBL(name, RODATA|NOPTR)
	for i, v := range vals {
		for lane := range 32 / size {
			if size == 8 {
				DATA(32*i+8*lane, U64(v))
			} else {
				DATA(32*i+4*lane, U32(uint32(v)))
			}
		}
	}
	return m
}

// nibbles32 loads 16 bytes at m and returns 32 bytes: the low nibbles then
// the high nibbles (the element order of the 32-element ggml blocks).
func nibbles32(m Mem) VecVirtual {
	// The 16 bytes in both lanes, the high lane's shifted down a nibble:
	// one shift instead of a shift and an insert (a port-5 shuffle).
	q := YMM()
	VBROADCASTI128(m, q)
	VPSRLVD(shiftHiLane, q, q)
	VPAND(mask0F, q, q)
	return q
}

// bitsToBytes turns the 32 bits of the little-endian dword at m into 32 bytes
// of 0xff (bit set) or 0x00.
func bitsToBytes(m Mem) VecVirtual {
	b, ones := YMM(), YMM()
	VPBROADCASTD(m, b)
	VPSHUFB(qhShuf, b, b)
	VPOR(bitSelect, b, b)
	VPCMPEQB(ones, ones, ones)
	VPCMPEQB(ones, b, b)
	return b
}

// packStore packs 4 vectors of 8 int32 (elements 0..31 in order) into 32
// signed bytes at m, saturating as vpackss does.
func packStore(i [4]VecVirtual, m Mem) {
	VPACKSSDW(i[1], i[0], i[0])
	VPACKSSDW(i[3], i[2], i[2])
	VPACKSSWB(i[2], i[0], i[0])
	p := YMM()
	VMOVDQU(packPerm, p)
	VPERMD(i[0], p, i[0])
	VMOVDQU(i[0], m)
}

// genQuantizeQ8 emits ggml-cpu's AVX2 quantize_row_q8_0 (or q8_1 with s).
func genQuantizeQ8(q81 bool) {
	name, stride, qs := "quantizeQ8_0AVX2", block.Q8_0Bytes, 2
	if q81 {
		name, stride, qs = "quantizeQ8_1AVX2", block.Q8_1Bytes, 4
	}
	genQuantize(name, "nb blocks of 32 floats at x into dst: d = amax/127 as f16, quants round(x*127/amax), ties to even.", name, 32, stride, func(dst, x Register) {
		var v [4]VecVirtual
		m := YMM()
		for k := range v {
			v[k] = YMM()
			VMOVUPS(Mem{Base: x, Disp: 32 * k}, v[k])
			a := YMM()
			VANDPS(absMask, v[k], a)
			if k == 0 {
				VMOVAPS(a, m)
			} else {
				VMAXPS(a, m, m)
			}
		}
		amax := hmax(m)
		d, id, zero, mask := XMM(), XMM(), XMM(), XMM()
		VMOVSS(f127, id)
		VDIVSS(id, amax, d)  // d = amax/127
		VDIVSS(amax, id, id) // id = 127/amax
		VXORPS(zero, zero, zero)
		VCMPSS(U8(4), zero, amax, mask) // amax != 0
		VANDPS(mask, id, id)
		h, r := XMM(), GP32()
		VCVTPS2PH(U8(0), d, h)
		VMOVD(h, r)
		MOVW(r.As16(), Mem{Base: dst})
		idv := YMM()
		VBROADCASTSS(id, idv)
		for k := range v {
			VMULPS(idv, v[k], v[k])
			VROUNDPS(U8(0), v[k], v[k])
			VCVTPS2DQ(v[k], v[k])
		}
		if q81 {
			s := YMM()
			VPADDD(v[1], v[0], s)
			VPADDD(v[2], s, s)
			VPADDD(v[3], s, s)
			t := XMM()
			VEXTRACTI128(U8(1), s, t)
			VPADDD(t, s.AsX(), t)
			u := XMM()
			VPSHUFD(U8(0x4e), t, u)
			VPADDD(u, t, t)
			VPSHUFD(U8(0xb1), t, u)
			VPADDD(u, t, t)
			VCVTDQ2PS(t, t)
			VMULSS(d, t, t)
			VCVTPS2PH(U8(0), t, t)
			VMOVD(t, r)
			MOVW(r.As16(), Mem{Base: dst, Disp: 2})
		}
		packStore(v, Mem{Base: dst, Disp: qs})
	})
}

// genQuantize emits a row quantizer func(dst *byte, x *float32, nb int)
// (doc completes "quantizes"): body quantizes the block of elems floats at
// x into the block of stride bytes at dst, once per block; label prefixes
// the loop's labels.
func genQuantize(name, doc, label string, elems, stride int, body func(dst, x Register)) {
	TEXT(name, NOSPLIT, "func(dst *byte, x *float32, nb int)")
	Doc(name + " quantizes " + doc)
	dst, x, nb := Load(Param("dst"), GP64()), Load(Param("x"), GP64()), Load(Param("nb"), GP64())
	Label(label + "_loop")
	TESTQ(nb, nb)
	JZ(LabelRef(label + "_done"))
	body(dst, x)
	ADDQ(U32(stride), dst)
	ADDQ(U32(4*elems), x)
	DECQ(nb)
	JMP(LabelRef(label + "_loop"))
	Label(label + "_done")
	VZEROUPPER()
	RET()
}

// genQuantizeQ8K emits quantize_row_q8_K_ref: the scale comes from the first
// element of largest magnitude, with its sign.
func genQuantizeQ8K() {
	name := "quantizeQ8_KAVX2"
	// The all-zero block jumps to q8k_next, the end of body.
	genQuantize(name, "nb blocks of 256 floats at x into Q8_K blocks at dst.", "q8k", block.QK_K, block.Q8_KBytes, func(dst, x Register) {
		m, mask := YMM(), YMM()
		VMOVDQU(absMask, mask)
		VMOVUPS(Mem{Base: x}, m)
		VANDPS(mask, m, m)
		for k := 1; k < 32; k++ {
			a := YMM()
			VMOVUPS(Mem{Base: x, Disp: 32 * k}, a)
			VANDPS(mask, a, a)
			VMAXPS(a, m, m)
		}
		amax := hmax(m)
		zero, isZero := XMM(), GP32()
		VXORPS(zero, zero, zero)
		VUCOMISS(zero, amax)
		JNE(LabelRef("q8k_nonzero"))
		// All zero: d, quants and bsums are all zero.
		{
			z := YMM()
			VPXOR(z, z, z)
			for off := 0; off+32 <= block.Q8_KBytes; off += 32 {
				VMOVDQU(z, Mem{Base: dst, Disp: off})
			}
			VMOVDQU(z, Mem{Base: dst, Disp: block.Q8_KBytes - 32})
			_ = isZero
			JMP(LabelRef("q8k_next"))
		}
		Label("q8k_nonzero")
		// Find the first element with |x| == amax.
		am := YMM()
		VBROADCASTSS(amax, am)
		idx, bits := GP64(), GP64()
		XORQ(idx, idx)
		Label("q8k_find")
		a, e := YMM(), YMM()
		VMOVUPS(Mem{Base: x, Index: idx, Scale: 4}, a)
		VANDPS(mask, a, a)
		VCMPPS(U8(0), am, a, e)
		VMOVMSKPS(e, bits.As32())
		TESTL(bits.As32(), bits.As32())
		JNZ(LabelRef("q8k_found"))
		ADDQ(U8(8), idx)
		CMPQ(idx, U32(256))
		JL(LabelRef("q8k_find"))
		// Not reached for finite input; NaNs fall back to the last element.
		MOVQ(U32(255), idx)
		JMP(LabelRef("q8k_have"))
		Label("q8k_found")
		BSFL(bits.As32(), bits.As32())
		ADDQ(bits, idx)
		Label("q8k_have")
		maxv, iscale, dd := XMM(), XMM(), XMM()
		VMOVSS(Mem{Base: x, Index: idx, Scale: 4}, maxv)
		VMOVSS(f127, iscale)
		VXORPS(dd, dd, dd)
		VSUBSS(iscale, dd, iscale)   // -127
		VDIVSS(maxv, iscale, iscale) // -127/max
		VMOVSS(f1, dd)
		VDIVSS(iscale, dd, dd) // 1/iscale
		VMOVSS(dd, Mem{Base: dst})
		is := YMM()
		VBROADCASTSS(iscale, is)
		lim := YMM()
		VMOVDQU(i127, lim)
		// 8 chunks of 32 elements; each chunk gives the sums of two groups of 16.
		var sums [16]VecVirtual
		for c := 0; c < 8; c++ {
			var v [4]VecVirtual
			for k := range v {
				v[k] = YMM()
				VMULPS(Mem{Base: x, Disp: 128*c + 32*k}, is, v[k])
				VCVTPS2DQ(v[k], v[k]) // MXCSR rounding: nearest even, as nearest_int
				VPMINSD(lim, v[k], v[k])
			}
			s0, s1 := YMM(), YMM()
			VPADDD(v[1], v[0], s0)
			VPADDD(v[3], v[2], s1)
			sums[2*c], sums[2*c+1] = s0, s1
			packStore(v, Mem{Base: dst, Disp: 4 + 32*c})
			if c%4 == 3 {
				// Reduce the 8 group vectors of this half into 8 int16 bsums.
				g := sums[8*(c/4) : 8*(c/4)+8]
				h01, h23, h45, h67 := YMM(), YMM(), YMM(), YMM()
				VPHADDD(g[1], g[0], h01)
				VPHADDD(g[3], g[2], h23)
				VPHADDD(g[5], g[4], h45)
				VPHADDD(g[7], g[6], h67)
				VPHADDD(h23, h01, h01)
				VPHADDD(h67, h45, h45)
				t0, t1 := XMM(), XMM()
				VEXTRACTI128(U8(1), h01, t0)
				VPADDD(t0, h01.AsX(), t0)
				VEXTRACTI128(U8(1), h45, t1)
				VPADDD(t1, h45.AsX(), t1)
				VPACKSSDW(t1, t0, t0)
				VMOVDQU(t0, Mem{Base: dst, Disp: 260 + 16*(c/4)})
			}
		}
		Label("q8k_next")
	})
}

// genRoundBF16 emits ggml_compute_fp32_to_bf16 over a row, widened back to
// float32: round to nearest even, NaNs quieted by setting bit 6 of the
// truncated value.
func genRoundBF16() {
	name := "roundBF16AVX2"
	TEXT(name, NOSPLIT, "func(dst, src *float32, n int)")
	Doc(name + " stores float32(bf16(src[i])) in dst[i] for i < n, rounding as ggml_compute_fp32_to_bf16.")
	dst, src, n := Load(Param("dst"), GP64()), Load(Param("src"), GP64()), Load(Param("n"), GP64())
	c7fff, one, inf, abs, c64 := YMM(), YMM(), YMM(), YMM(), YMM()
	t := GP32()
	splat := func(v VecVirtual, bits uint32) { // bits in every dword of v
		MOVL(U32(bits), t)
		VMOVD(t, v.AsX())
		VPBROADCASTD(v.AsX(), v)
	}
	splat(c7fff, 0x7fff)
	splat(one, 1)
	splat(inf, 0x7f800000)
	splat(c64, 64)
	VMOVDQU(absMask, abs)
	elementLoop("f2b_loop", "f2b", n, src, dst, 4, 4, func() {
		u, r, nan, q := YMM(), YMM(), YMM(), YMM()
		VMOVDQU(Mem{Base: src}, u)
		VPSRLD(U8(16), u, q)    // u>>16
		VPAND(one, q, r)        // (u>>16)&1
		VPADDD(c7fff, r, r)     // + 0x7fff
		VPADDD(u, r, r)         // + u
		VPSRLD(U8(16), r, r)    // >> 16
		VPOR(c64, q, q)         // NaN result: (u>>16)|64
		VPAND(abs, u, nan)      // |u|
		VPCMPGTD(inf, nan, nan) // |u| > inf bits: NaN
		VPBLENDVB(nan, q, r, r)
		VPSLLD(U8(16), r, r)
		VMOVDQU(r, Mem{Base: dst})
	}, func() {
		w, hi, a := GP32(), GP32(), GP32()
		MOVL(Mem{Base: src}, w)
		MOVL(w, hi)
		SHRL(U8(16), hi)
		MOVL(w, a)
		ANDL(U32(0x7fffffff), a)
		CMPL(a, U32(0x7f800000))
		JA(LabelRef("f2b_nan"))
		MOVL(hi, a)
		ANDL(U32(1), a)
		ADDL(U32(0x7fff), a)
		ADDL(w, a)
		ANDL(U32(0xffff0000), a)
		MOVL(a, Mem{Base: dst})
		JMP(LabelRef("f2b_next"))
		Label("f2b_nan")
		ORL(U32(64), hi)
		SHLL(U8(16), hi)
		MOVL(hi, Mem{Base: dst})
		Label("f2b_next")
	})
}

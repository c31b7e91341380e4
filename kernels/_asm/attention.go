package main

import (
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The attention kernels: the softmax's exponentials and the weighted sum of
// the cached values. Both give the bits of their Go references
// (expShiftedGo, weightedSumF16Go), element by element, so that replacing
// one call per key (AxpyF16) or per score (expNonPositive) changes nothing
// but the time.

// genWeightedSumF16 emits func(out, w *float32, v *byte, keys, hd int):
// out[e] = Σ_j w[j]·f16(v[j*hd + e]) for e < hd, the keys j in order, each
// step one fused multiply-add, as AxpyF16 called once per key on a zeroed
// out. Each 64-element (then 32, 8, 1) strip of out stays in registers
// over all the keys; the one-call-per-key loop it replaces loaded and
// stored out for every key and spent most of its time in calls.
func genWeightedSumF16() {
	name := "weightedSumF16AVX2"
	TEXT(name, NOSPLIT, "func(out *float32, w *float32, v *byte, keys, hd int)")
	Doc(name+" stores in out[e] the sum over j < keys of w[j]*f16(v[j*hd+e]), for e < hd,",
		"accumulated in key order with fused multiply-adds (AxpyF16 per key from zero).")
	out, w, v := Load(Param("out"), GP64()), Load(Param("w"), GP64()), Load(Param("v"), GP64())
	keys, left := Load(Param("keys"), GP64()), Load(Param("hd"), GP64())
	rowBytes := GP64()
	MOVQ(left, rowBytes)
	SHLQ(U8(1), rowBytes)
	// strip emits the loop over one strip of width elements (a multiple of
	// 8 as ymm accumulators, or 1) at out and v, then advances them.
	strip := func(label string, width int) {
		Label(label)
		CMPQ(left, Imm(uint64(width)))
		JL(LabelRef(label + "_end"))
		nacc := max(width/8, 1)
		accs := make([]VecVirtual, nacc)
		for i := range accs {
			if width == 1 {
				accs[i] = zeroX()
			} else {
				accs[i] = zeroY()
			}
		}
		wp, vp, k := GP64(), GP64(), GP64()
		MOVQ(w, wp)
		MOVQ(v, vp)
		MOVQ(keys, k)
		Label(label + "_key")
		TESTQ(k, k)
		JZ(LabelRef(label + "_store"))
		if width == 1 {
			h := loadF16x1(Mem{Base: vp})
			a := XMM()
			VMOVSS(Mem{Base: wp}, a)
			VFMADD231SS(h, a, accs[0])
		} else {
			a := YMM()
			VBROADCASTSS(Mem{Base: wp}, a)
			for i, acc := range accs {
				t := YMM()
				VCVTPH2PS(Mem{Base: vp, Disp: 16 * i}, t)
				VFMADD231PS(t, a, acc)
			}
		}
		ADDQ(Imm(4), wp)
		ADDQ(rowBytes, vp)
		DECQ(k)
		JMP(LabelRef(label + "_key"))
		Label(label + "_store")
		for i, acc := range accs {
			if width == 1 {
				VMOVSS(acc, Mem{Base: out})
			} else {
				VMOVUPS(acc, Mem{Base: out, Disp: 32 * i})
			}
		}
		ADDQ(U32(4*width), out)
		ADDQ(U32(2*width), v)
		SUBQ(Imm(uint64(width)), left)
		JMP(LabelRef(label))
		Label(label + "_end")
	}
	// Eight accumulators take whole 64-element heads: with four, each
	// key's multiply-adds waited on the previous key's (the latency, not
	// the throughput, bound the loop).
	strip("ws64", 64)
	strip("ws32", 32)
	strip("ws8", 8)
	strip("ws1", 1)
	VZEROUPPER()
	RET()
}

// expConsts holds the constants of genExpShifted, eight lanes each, in the
// order of expConstValues; expConst(i) addresses constant i.
var expConsts Mem

// The constants as Go rounds them to float32 in expShiftedGo: the lowest
// argument, log2(e), ln2 in two parts, the polynomial, 1.
var expConstValues = []float32{-87.3, 1.44269504088896341, 0.693359375, -2.12194440e-4,
	1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1, 1}

const (
	expLowest = iota
	expLog2e
	expLn2Hi
	expLn2Lo
	expPoly // the six coefficients, highest degree first
	expOne  = expPoly + 6
)

func expConst(i int) Mem { return expConsts.Offset(32 * i) }

// genExpShifted emits func(x *float32, n int, shift float32): x[i] =
// e^(x[i] − shift) for i < n (n a multiple of 8) by the steps of
// expShiftedGo (the Cephes expf reduction and polynomial, no fused
// operations), lane by lane: 0 below −87.3, NaN stays NaN.
func genExpShifted() {
	var bits []uint64
	for _, f := range expConstValues {
		bits = append(bits, uint64(math.Float32bits(f)))
	}
	expConsts = laneTable("expConsts", bits, 4)
	name := "expShiftedAVX2"
	TEXT(name, NOSPLIT, "func(x *float32, n int, shift float32)")
	Doc(name+" replaces x[i] with e^(x[i]-shift) for i < n (a multiple of 8), with the",
		"bits of expShiftedGo.")
	x, n := Load(Param("x"), GP64()), Load(Param("n"), GP64())
	shift, lowest, bias := YMM(), YMM(), YMM()
	// Broadcast straight from the argument slot (see genAxpyF16).
	VBROADCASTSS(paramMem("shift"), shift)
	VMOVUPS(expConst(expLowest), lowest)
	VMOVUPS(expConst(expOne), bias)
	VPSRLD(U8(23), bias, bias) // 1.0's exponent field: 127
	Label("exp_loop")
	CMPQ(n, Imm(8))
	JL(LabelRef("exp_done"))
	v := YMM()
	VMOVUPS(Mem{Base: x}, v)
	VSUBPS(shift, v, v)
	ok, nan := YMM(), YMM()
	VCMPPS(U8(0x1d), lowest, v, ok) // v >= -87.3, ordered: false for NaN
	VCMPPS(U8(0x03), v, v, nan)     // unordered: v is NaN
	k, t, r := YMM(), YMM(), YMM()
	VMULPS(expConst(expLog2e), v, k)
	VROUNDPS(U8(0), k, k) // to nearest, ties to even
	VMULPS(expConst(expLn2Hi), k, t)
	VSUBPS(t, v, r)
	VMULPS(expConst(expLn2Lo), k, t)
	VSUBPS(t, r, r)
	p := YMM()
	VMOVUPS(expConst(expPoly), p)
	for i := 1; i < 6; i++ {
		VMULPS(r, p, p)
		VADDPS(expConst(expPoly+i), p, p)
	}
	VMULPS(r, p, p)
	VMULPS(r, p, p)
	VADDPS(r, p, p)
	VADDPS(expConst(expOne), p, p)
	e := YMM()
	VCVTPS2DQ(k, e) // k is a whole number: exact
	VPADDD(bias, e, e)
	VPSLLD(U8(23), e, e)
	VMULPS(e, p, p)
	VANDPS(ok, p, p)
	VBLENDVPS(nan, v, p, p)
	VMOVUPS(p, Mem{Base: x})
	ADDQ(Imm(32), x)
	SUBQ(Imm(8), n)
	JMP(LabelRef("exp_loop"))
	Label("exp_done")
	VZEROUPPER()
	RET()
}

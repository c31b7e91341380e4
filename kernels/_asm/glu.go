package main

import (
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
)

// siluConsts are the float64 constants of Go's math.Exp on amd64 with FMA
// (math/exp_amd64.s, its avxfma path): log2(e), ln2 in two parts, the
// reduction factor 1/16, the Taylor coefficients 1/9! … 1/2! (highest
// first) and 1, then 2 for the four squarings; and siluSafe, the float32
// bound on |x| inside which that path takes no overflow or denormal branch.
// As facts about Go's algorithm they are copied, not derived.
var siluConstValues = []float64{
	1.4426950408889634073599246810018920,                  // log2(e)
	0.69314718055966295651160180568695068359375,           // ln2, upper part
	0.28235290563031577122588448175013436025525412068e-12, // ln2, lower part
	0.0625,
	2.4801587301587301587e-5, 1.9841269841269841270e-4, 1.3888888888888888889e-3,
	8.3333333333333333333e-3, 4.1666666666666666667e-2, 1.6666666666666666667e-1,
	0.5, 1.0,
	2.0,
}

const (
	siluLog2e = iota
	siluLn2Hi
	siluLn2Lo
	siluSixteenth
	siluPoly // 8 coefficients, the last 1.0
	siluTwo  = siluPoly + 8
	siluSafe = 700
)

var siluConsts Mem

func siluConst(i int) Mem { return siluConsts.Offset(32 * i) }

// genSiLUMul emits func(g, u *float32, n int) int: g[i] = silu(g[i])·u[i]
// for i < n (a multiple of 4), silu(x) = x / (1 + float32(math.Exp(-x)))
// with math.Exp's own float64 steps four lanes at a time, so the bits are
// siluMulGo's. It stops before the first group of four holding an x with
// |x| > 700 or NaN (where math.Exp would branch) and returns how many it
// did; the Go wrapper does that group and calls again.
func genSiLUMul() {
	var bits []uint64
	for _, f := range siluConstValues {
		bits = append(bits, math.Float64bits(f))
	}
	siluConsts = laneTable("siluConsts", bits, 8)
	name := "siluMulAVX2"
	TEXT(name, NOSPLIT, "func(gate, up *float32, n int) int")
	Doc(name+" sets gate[i] = silu(gate[i])*up[i] for i < n (a multiple of 4) with the bits of",
		"siluMulGo, up to the first group of four with a |gate[i]| > 700 or NaN; it returns",
		"the number of elements done.")
	g, u, n := Load(Param("gate"), GP64()), Load(Param("up"), GP64()), Load(Param("n"), GP64())
	done := GP64()
	XORQ(done, done)
	safe, bias, one := XMM(), YMM(), XMM()
	tmp := GP32()
	MOVL(U32(math.Float32bits(siluSafe)), tmp)
	VMOVD(tmp, safe)
	VBROADCASTSS(safe, safe)
	VBROADCASTSS(f1, one)
	MOVQ(U64(0x3ff), tmp.As64())
	VMOVQ(tmp.As64(), bias.AsX())
	VPBROADCASTQ(bias.AsX(), bias)
	Label("silu_loop")
	CMPQ(n, Imm(4))
	JL(LabelRef("silu_done"))
	x := XMM()
	VMOVUPS(Mem{Base: g}, x)
	// Every lane finite and |x| ≤ 700, or stop here.
	ax, ok := XMM(), GP32()
	VANDPS(absMask, x, ax)         // |x|, with the table's first four lanes
	VCMPPS(U8(0x02), safe, ax, ax) // |x| <= 700, false for NaN
	VMOVMSKPS(ax, ok)
	CMPL(ok, U8(0xf))
	JNE(LabelRef("silu_done"))
	// a = float64(-x): the negation is exact in either width.
	a := YMM()
	VCVTPS2PD(x, a)
	zero := YMM()
	VXORPD(zero, zero, zero)
	VSUBPD(a, zero, a)
	// k = round(a·log2 e) as int32 (the MXCSR's nearest, as CVTSD2SL).
	t, k, kd := YMM(), XMM(), YMM()
	VMULPD(siluConst(siluLog2e), a, t)
	VCVTPD2DQY(t, k)
	VCVTDQ2PD(k, kd)
	hi := YMM()
	VMOVUPD(siluConst(siluLn2Hi), hi)
	VFNMADD231PD(hi, kd, a) // a -= k·ln2hi, fused
	VMOVUPD(siluConst(siluLn2Lo), hi)
	VFNMADD231PD(hi, kd, a)
	VMULPD(siluConst(siluSixteenth), a, a)
	p := YMM()
	VMOVUPD(siluConst(siluPoly), p)
	for i := 1; i < 8; i++ {
		VFMADD213PD(siluConst(siluPoly+i), a, p) // p = p·a + c
	}
	VMULPD(p, a, a)
	for i := range 4 {
		VADDPD(siluConst(siluTwo), a, p)
		if i < 3 {
			VMULPD(p, a, a)
		} else {
			VFMADD213PD(siluConst(siluPoly+7), p, a) // a = a·p + 1
		}
	}
	// a·2^k: k + 1023 into the exponent field.
	s := YMM()
	VPMOVSXDQ(k, s)
	VPADDQ(bias, s, s)
	VPSLLQ(U8(52), s, s)
	VMULPD(s, a, a)
	// silu = x / (1 + float32(e)), then times u.
	e := XMM()
	VCVTPD2PSY(a, e)
	VADDPS(one, e, e)
	VDIVPS(e, x, x)
	VMULPS(Mem{Base: u}, x, x)
	VMOVUPS(x, Mem{Base: g})
	ADDQ(Imm(16), g)
	ADDQ(Imm(16), u)
	ADDQ(Imm(4), done)
	SUBQ(Imm(4), n)
	JMP(LabelRef("silu_loop"))
	Label("silu_done")
	Store(done, ReturnIndex(0))
	VZEROUPPER()
	RET()
}

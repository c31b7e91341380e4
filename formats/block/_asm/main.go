// Command _asm generates terms_amd64.s of package block with avo: the
// element-wise terms of the K-quant scale search (terms.go), eight values
// per AVX2 instruction, and the package's own AVX2 probe. Run through go
// generate in package block.
//
// Every lane must round exactly as the Go reference does, so the code uses
// only separate multiplies and adds (no FMA), in the scalar code's order.
// The first source of each operation is the one the Go compiler (without
// -race) makes first in the scalar code; that only decides which payload
// two NaNs meeting give, which the searches never see for finite input
// (quantizeRows refuses any other).
//
// The Go declarations stay hand-written in terms_amd64.go (go vet checks
// them against the frames generated here); the array lengths below are
// qkx2Width and qxWidth.
package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

const (
	qkx2Bytes = 32 * 4 // qkx2Width float32
	qxBytes   = 16 * 4 // qxWidth float32
)

// The constants of nearest_int's bit trick: adding 1.5·2^23 leaves the
// rounded value in the low mantissa bits, offset by 2^22.
var qkxMagic, qkxMantissa, qkxHalf Mem

func main() {
	ConstraintExpr("!purego")
	qkxMagic = constant("qkxMagic", 0x4b400000) // 1.5·2^23
	qkxMantissa = constant("qkxMantissa", 0x007fffff)
	qkxHalf = constant("qkxHalf", 0x00400000)
	genQkx2Terms()
	genQkx2Err()
	genQxTerms()
	genHasAVX2()
	Generate()
}

func constant(name string, bits uint32) Mem {
	m := GLOBL(name, RODATA|NOPTR)
	DATA(0, U32(bits))
	return m
}

// broadcastParam broadcasts the float32 argument name to every lane of a
// fresh ymm straight from its argument slot: avo's Load of a float32 would
// emit a legacy-SSE MOVSS into the VEX code.
func broadcastParam(name string) VecVirtual {
	slot, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	y := YMM()
	VBROADCASTSS(slot.Addr, y)
	return y
}

// broadcastInt broadcasts the 32-bit r to every lane of a fresh ymm.
func broadcastInt(r Register) VecVirtual {
	x, y := XMM(), YMM()
	VMOVD(r, x)
	VPBROADCASTD(x, y)
	return y
}

// rounding holds nearest_int's constants in registers for a loop.
type rounding struct{ magic, mantissa, half VecVirtual }

func loadRounding() rounding {
	r := rounding{YMM(), YMM(), YMM()}
	VBROADCASTSS(qkxMagic, r.magic)
	VPBROADCASTD(qkxMantissa, r.mantissa)
	VPBROADCASTD(qkxHalf, r.half)
	return r
}

// codes turns the scaled values in v into float32 codes in place:
// nearest_int, clamped to [lo, hi] (int32 lanes).
func (r rounding) codes(v, lo, hi VecVirtual) {
	VADDPS(r.magic, v, v)
	VPAND(r.mantissa, v, v)
	VPSUBD(r.half, v, v)
	VPMAXSD(lo, v, v)
	VPMINSD(hi, v, v)
	VCVTDQ2PS(v, v)
}

// eachVector emits a loop over the arrays of size bytes, eight float32 per
// iteration: body gets the address of the current eight in an array.
func eachVector(label string, size int, body func(at func(base Register) Mem)) {
	i := GP64()
	XORQ(i, i)
	Label(label)
	body(func(base Register) Mem { return Mem{Base: base, Index: i, Scale: 1} })
	ADDQ(U8(32), i)
	CMPQ(i, U32(size))
	JL(LabelRef(label))
	VZEROUPPER()
	RET()
}

func loadPointers(names ...string) []Register {
	var ps []Register
	for _, n := range names {
		ps = append(ps, Load(Param(n), GP64()))
	}
	return ps
}

// genQkx2Terms emits qkx2TermsGo: codes = clamp(nearest(iscale·(x−m)), 0,
// nmax), wl = w·f, wll = wl·f, wxl = wl·x.
func genQkx2Terms() {
	TEXT("qkx2TermsAVX2", NOSPLIT, "func(x, w, codes, wl, wll, wxl *[32]float32, iscale, m float32, nmax int32)")
	p := loadPointers("x", "w", "codes", "wl", "wll", "wxl")
	x, w, codes, wl, wll, wxl := p[0], p[1], p[2], p[3], p[4], p[5]
	iscale, m := broadcastParam("iscale"), broadcastParam("m")
	nmax := broadcastInt(Load(Param("nmax"), GP32()))
	r := loadRounding()
	zero := YMM()
	VPXOR(zero, zero, zero)
	eachVector("termsLoop", qkx2Bytes, func(at func(Register) Mem) {
		xv, f := YMM(), YMM()
		VMOVUPS(at(x), xv)
		VSUBPS(m, xv, f)     // x - m
		VMULPS(iscale, f, f) // iscale·(x - m)
		r.codes(f, zero, nmax)
		VMOVUPS(f, at(codes))
		l := YMM()
		VMOVUPS(at(w), l)
		VMULPS(f, l, l) // wl = w·f
		VMOVUPS(l, at(wl))
		ll := YMM()
		VMULPS(l, f, ll) // wl·f
		VMOVUPS(ll, at(wll))
		xl := YMM()
		VMULPS(l, xv, xl) // wl·x
		VMOVUPS(xl, at(wxl))
	})
}

// genQkx2Err emits qkx2ErrGo: out = w·d² where d = scale·codes + min − x.
func genQkx2Err() {
	TEXT("qkx2ErrAVX2", NOSPLIT, "func(codes, x, w, out *[32]float32, scale, min float32)")
	p := loadPointers("codes", "x", "w", "out")
	codes, x, w, out := p[0], p[1], p[2], p[3]
	scale, min := broadcastParam("scale"), broadcastParam("min")
	eachVector("errLoop", qkx2Bytes, func(at func(Register) Mem) {
		d := YMM()
		VMOVUPS(at(codes), d)
		VMULPS(scale, d, d) // scale·f
		VADDPS(min, d, d)   // + min
		xv := YMM()
		VMOVUPS(at(x), xv)
		VSUBPS(xv, d, d) // - x
		VMULPS(d, d, d)  // d²
		wv := YMM()
		VMOVUPS(at(w), wv)
		VMULPS(wv, d, d) // w·d²
		VMOVUPS(d, at(out))
	})
}

// genQxTerms emits qxTermsGo: f = clamp(nearest(iscale·x), −nmax, nmax−1),
// wxl = w·x·f, wll = w·f·f.
func genQxTerms() {
	TEXT("qxTermsAVX2", NOSPLIT, "func(x, w, wxl, wll *[16]float32, iscale float32, nmax int32)")
	p := loadPointers("x", "w", "wxl", "wll")
	x, w, wxl, wll := p[0], p[1], p[2], p[3]
	iscale := broadcastParam("iscale")
	n, top := Load(Param("nmax"), GP32()), GP32()
	LEAL(Mem{Base: n, Disp: -1}, top)
	NEGL(n)
	lo, hi := broadcastInt(n), broadcastInt(top) // -nmax, nmax - 1
	r := loadRounding()
	eachVector("qxLoop", qxBytes, func(at func(Register) Mem) {
		xv, f := YMM(), YMM()
		VMOVUPS(at(x), xv)
		VMULPS(iscale, xv, f) // iscale·x
		r.codes(f, lo, hi)
		wv, wx := YMM(), YMM()
		VMOVUPS(at(w), wv)
		VMULPS(xv, wv, wx) // w·x
		VMULPS(f, wx, wx)  // w·x·f
		VMOVUPS(wx, at(wxl))
		wf := YMM()
		VMULPS(f, wv, wf) // w·f
		VMULPS(wf, f, wf) // w·f·f
		VMOVUPS(wf, at(wll))
	})
}

// genHasAVX2 emits the CPUID probe: formats/block imports only the
// standard library, so it cannot ask x/sys/cpu. AVX2 needs CPUID leaf 7,
// the OSXSAVE and AVX bits of leaf 1, the OS saving XMM and YMM state
// (XCR0 bits 1 and 2) and leaf 7's AVX2 bit.
func genHasAVX2() {
	TEXT("hasAVX2", NOSPLIT, "func() bool")
	ret, err := ReturnIndex(0).Resolve()
	if err != nil {
		panic(err)
	}
	XORL(EAX, EAX)
	XORL(ECX, ECX)
	CPUID()
	CMPL(EAX, U8(7)) // leaf 7 needed
	JL(LabelRef("noAVX2"))
	MOVL(U32(1), EAX)
	XORL(ECX, ECX)
	CPUID()
	ANDL(U32(0x18000000), ECX) // OSXSAVE and AVX
	CMPL(ECX, U32(0x18000000))
	JNE(LabelRef("noAVX2"))
	XORL(ECX, ECX)
	XGETBV() // XCR0: the OS saves XMM and YMM state
	ANDL(U8(6), EAX)
	CMPL(EAX, U8(6))
	JNE(LabelRef("noAVX2"))
	MOVL(U32(7), EAX)
	XORL(ECX, ECX)
	CPUID()
	ANDL(U8(0x20), EBX) // AVX2
	JZ(LabelRef("noAVX2"))
	MOVB(U8(1), ret.Addr)
	RET()
	Label("noAVX2")
	MOVB(U8(0), ret.Addr)
	RET()
}

package main

import (
	"strconv"

	"github.com/llqt/llqt/formats/block"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Word panels, the AVX2 set's panels for Q8_0 and IQ4_XS weights. Without
// VNNI, a product of two signed bytes costs vpabsb/vpsignb, vpmaddubsw and
// vpmaddwd: three instructions on the two vector multiply ports per 32
// products (IQ4_XS's table values are signed too). With both sides widened
// to int16 beforehand, one vpmaddwd forms 16 products and one vpaddd, which
// the third vector port can take, adds them: no sign fix-ups, and no int16
// bound to watch. The widening is paid once: for the activations when the
// panel is packed, for the weights once per task, for all its panels.
//
// A widened weight block (see widenQ8_0AVX2, widenIQ4XSAVX2): the block's
// scale as float32, then its quants as int16 in element order (for IQ4_XS
// the table value times the sub-block's scale ls−32, at most 127·32 in
// magnitude, so that the block sum needs no per-run scaling).
//
// A word panel block (see packWordPanel in package kernels): sixteen
// activation rows as per/2 steps of 64 bytes, step s holding quants 2s and
// 2s+1 of rows 0-7 then of rows 8-15 as int16; then the sixteen scales as
// float32.
//
// One panel kernel serves each block size (32 against Q8_0 activations, 256
// against Q8_K's); a widening kernel per weight type feeds it.
var wordBlockSizes = []int{block.QK, block.QK_K}

// A wordKind is a weight type with word panels: widen decodes the block at
// src into its signed byte quants, calling words(q, j, scale) for each
// run j of 32 (scale, if not nil, the run's int16 scale in every lane).
type wordKind struct {
	name, doc string
	per       int // elements per block
	srcBytes  int
	widen     func(src Register, words func(q VecVirtual, j int, scale VecVirtual))
}

var wordKinds = []wordKind{
	{"Q8_0", "Q8_0", block.QK, block.Q8_0Bytes, func(src Register, words func(VecVirtual, int, VecVirtual)) {
		q := YMM()
		VMOVDQU(Mem{Base: src, Disp: 2}, q)
		words(q, 0, nil)
	}},
	{"IQ4NL", "IQ4_NL", block.QK, block.IQ4_NLBytes, func(src Register, words func(VecVirtual, int, VecVirtual)) {
		q := nibbles32(Mem{Base: src, Disp: 2})
		table := YMM()
		VMOVDQU(kvalues, table)
		VPSHUFB(q, table, q)
		words(q, 0, nil)
	}},
	{"IQ4XS", "IQ4_XS", block.QK_K, block.IQ4_XSBytes, func(src Register, words func(VecVirtual, int, VecVirtual)) {
		scales := iq4XSScalePairs(src)
		table := YMM()
		VMOVDQU(kvalues, table)
		for j := range 8 {
			q := nibbles32(Mem{Base: src, Disp: 8 + 16*j})
			VPSHUFB(q, table, q)
			sc := YMM()
			VPBROADCASTD(scales.Offset(4*j), sc)
			words(q, j, sc)
		}
	}},
}

// wordBytes is the size of a widened weight block of per elements.
func wordBytes(per int) int { return 4 + 2*per }

// genWordPanel emits func(w *byte, wstride int, p *byte, nb int, out
// *float32, outstride int): the two widened weight rows at w and w+wstride
// (blocks of per elements) times a word panel, the 32 dots stored at out +
// r + c*outstride (in floats). The block sums are exact int32 (|sum| ≤
// 256·127·32·128 < 2^31), and the float steps are the dot's: d = dx·dy,
// then fma(f32(isum), d, acc) over the blocks in order from +0.
func genWordPanel(per int) {
	name := "panelWords" + strconv.Itoa(per) + "AVX2"
	TEXT(name, NOSPLIT, "func(w *byte, wstride int, p *byte, nb int, out *float32, outstride int)")
	Doc(name+" stores at out + r + c*outstride (in floats) the dot product of nb widened blocks of "+strconv.Itoa(per)+" at w + r*wstride",
		"and activation row c of the word panel at p (nb blocks), for r < 2 and c < 16.")
	ws := offsets(Load(Param("w"), GP64()), Load(Param("wstride"), GP64()), 2)
	p := Load(Param("p"), GP64())
	nb := Load(Param("nb"), GP64())
	accs := zeroPanel()
	// Each block is groups runs of 16 steps (32 elements): w advances 64
	// bytes and p 1024 a run, so that after the block w is 4 bytes short
	// of the next block (its scale 4+2*per back), and p at the scales.
	groups := per / 32
	Label(name + "_block")
	TESTQ(nb, nb)
	JZ(LabelRef(name + "_done"))
	// Blocks of one run take their first products as the sums; longer
	// ones loop over their runs, adding to zeroed sums.
	var sums [2][2]VecVirtual
	for r := range 2 {
		for o := range 2 {
			if groups > 1 {
				sums[r][o] = zeroY()
			}
		}
	}
	var g GPVirtual
	if groups > 1 {
		g = GP64()
		MOVQ(U32(groups), g)
		Label(name + "_run")
	}
	for s := range 16 {
		ys := loadOctets(Mem{Base: p, Disp: 64 * s})
		for r := range 2 {
			wb := YMM()
			VPBROADCASTD(Mem{Base: ws[r], Disp: 4 + 4*s}, wb)
			for o := range 2 {
				if sums[r][o] == nil {
					sums[r][o] = YMM()
					VPMADDWD(ys[o], wb, sums[r][o])
					continue
				}
				t := YMM()
				VPMADDWD(ys[o], wb, t)
				VPADDD(t, sums[r][o], sums[r][o])
			}
		}
	}
	for _, w := range ws {
		ADDQ(U32(64), w)
	}
	ADDQ(U32(1024), p)
	if groups > 1 {
		DECQ(g)
		JNZ(LabelRef(name + "_run"))
	}
	for r := range 2 {
		dx := YMM()
		VBROADCASTSS(Mem{Base: ws[r], Disp: -2 * per}, dx)
		for o := range 2 {
			sm := sums[r][o]
			VCVTDQ2PS(sm, sm)
			d := YMM()
			VMULPS(Mem{Base: p, Disp: 32 * o}, dx, d)
			VFMADD231PS(sm, d, accs[r][o])
		}
	}
	for _, w := range ws {
		ADDQ(U32(4), w)
	}
	ADDQ(U32(64), p)
	DECQ(nb)
	JMP(LabelRef(name + "_block"))
	Label(name + "_done")
	o, stride := outArgs()
	storePanel(accs, o, stride)
	VZEROUPPER()
	RET()
}

// genWiden emits func(dst, src *byte, nb int), which writes the nb blocks at
// src to dst as widened weight blocks.
func genWiden(k wordKind) {
	name := "widen" + k.name + "AVX2"
	TEXT(name, NOSPLIT, "func(dst, src *byte, nb int)")
	Doc(name + " writes the nb " + k.doc + " blocks at src to dst as word-panel weight blocks: the scale as float32, then the quants as int16.")
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	nb := Load(Param("nb"), GP64())
	Label(name + "_loop")
	TESTQ(nb, nb)
	JZ(LabelRef(name + "_done"))
	d := XMM()
	VPBROADCASTW(Mem{Base: src}, d)
	VCVTPH2PS(d, d)
	VMOVSS(d, Mem{Base: dst})
	// words stores the 32 signed bytes q (elements 32j..32j+31) as int16,
	// times scale if not nil.
	words := func(q VecVirtual, j int, scale VecVirtual) {
		hi := XMM()
		VEXTRACTI128(U8(1), q, hi)
		for h, half := range []VecVirtual{q.AsX().(VecVirtual), hi} {
			v := YMM()
			VPMOVSXBW(half, v)
			if scale != nil {
				VPMULLW(scale, v, v)
			}
			VMOVDQU(v, Mem{Base: dst, Disp: 4 + 64*j + 32*h})
		}
	}
	k.widen(src, words)
	ADDQ(U32(k.srcBytes), src)
	ADDQ(U32(wordBytes(k.per)), dst)
	DECQ(nb)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

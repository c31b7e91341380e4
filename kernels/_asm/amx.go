package main

import (
	"fmt"

	"github.com/llqt/llqt/formats/block"
	. "github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/ir"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// AMX tile kernels (Intel Sapphire Rapids and later) for prompt batches of
// the Q8_0 family. A TDPBSSD multiplies a tile of sixteen rows of 32 signed
// bytes (A: sixteen weight rows, one block each) by a tile of eight rows of
// 64 bytes (B: the same 32 quants of sixteen activation rows, four at a
// time), adding into a 16×16 tile of int32: one instruction forms 8192
// products, against 64 for a zmm vpdpbusd. A panel block (see packPanel)
// already holds its quants in B's layout, and they are signed, so the
// activation panels serve as they are, and the sums need no bias.
//
// Each block's sums are exact int32, as in every other shape. The tile is
// stored to memory, and each of its rows (one weight row, sixteen activation
// rows) is converted and added with one fused multiply-add into a zmm of
// sixteen outputs, in block order: the dot contract of the Q8_0 family
// (dot = fma(float32(isum_b), dx_b·dy_b, dot)), so the bits are those of
// the dot.
//
// Go's assembler has no AMX mnemonics, so the instructions are emitted as
// bytes (amxInst); their operands are pinned to physical registers.

// Tile registers of the panel kernel: block k (mod 4) loads into A and B
// tiles k%2 and sums into C tile k, so that four blocks are in flight.
// Tiles are not renamed: with one set of tiles each block waited for the
// last one's store (29 ns a block and panel in BenchmarkAMXPanels on a
// Xeon model 167), with two sets 22.
var (
	amxA = [2]byte{0, 1} // 16 weight rows × 32 quants
	amxB = [2]byte{2, 3} // 8 × (4 quants × 16 activation rows)
	amxC = [4]byte{4, 5, 6, 7}
)

// amxTileCfg is LDTILECFG's 64-byte operand: palette 1, then each tile's
// bytes per row (at 16+2i) and rows (at 48+i).
var amxTileCfg Mem

// amxIota holds the sixteen dwords 0, 64, …, 960: the byte offsets of a
// column's elements in a 16×16 float32 tile stored row by row.
var amxIota Mem

// amxValuesQ4_0 maps a Q4_0 nibble to its signed quant (q − 8); kvalues
// does the same for IQ4_NL.
var amxValuesQ4_0 Mem

func amxConstants() {
	amxTileCfg = GLOBL("amxTileCfg", RODATA|NOPTR)
	DATA(0, U8(1)) // palette 1 (the assembler wants offsets in order)
	colsb, rows := map[byte]int{}, map[byte]int{}
	for i := range 2 {
		colsb[amxA[i]], rows[amxA[i]] = 32, 16
		colsb[amxB[i]], rows[amxB[i]] = 64, 8
	}
	for _, c := range amxC {
		colsb[c], rows[c] = 64, 16 // 16 × 16 int32
	}
	for t := range byte(8) {
		DATA(16+2*int(t), U16(colsb[t]))
	}
	for t := range byte(8) {
		DATA(48+int(t), U8(rows[t]))
	}
	DATA(63, U8(0))
	amxIota = GLOBL("amxIota", RODATA|NOPTR)
	for i := range 16 {
		DATA(4*i, U32(64*i))
	}
	amxValuesQ4_0 = GLOBL("amxValuesQ4_0", RODATA|NOPTR)
	for i := range 32 {
		DATA(i, U8(byte(int8(i%16-8))))
	}
}

// amxInst emits one instruction given as bytes; uses are the registers it
// reads, so that liveness keeps them.
func amxInst(text string, uses []Register, bytes ...byte) {
	Comment(text)
	for i, b := range bytes {
		in := &ir.Instruction{Opcode: "BYTE", Operands: []Op{U8(b)}}
		if i == 0 {
			for _, r := range uses {
				in.Inputs = append(in.Inputs, r)
			}
		}
		Instruction(in)
	}
}

// gpIndex is the hardware number of a physical general-purpose register.
func gpIndex(r Register) byte { return byte(r.(Physical).PhysicalIndex()) }

// vex3 is the three-byte VEX prefix of an AMX instruction (map 0F38, W0,
// L0): rExt, xExt and bExt extend ModRM.reg, SIB.index and ModRM.rm or
// SIB.base; vvvv is the extra tile operand (0 if none); pp 0 (none),
// 1 (66), 2 (F3) or 3 (F2).
func vex3(rExt, xExt, bExt, vvvv, pp byte) []byte {
	b1 := byte(0x02) // map 0F38
	if rExt == 0 {
		b1 |= 0x80
	}
	if xExt == 0 {
		b1 |= 0x40
	}
	if bExt == 0 {
		b1 |= 0x20
	}
	return []byte{0xc4, b1, (^vvvv&15)<<3 | pp}
}

// sibMem encodes [base + index*1 + disp] with ModRM.reg = tile: mod 00
// without a displacement (but where the base is BP or R13), else 01 (disp8)
// or 10 (disp32).
func sibMem(tile byte, base, index Register, disp int32, pp, opcode byte) []byte {
	b, x := gpIndex(base), gpIndex(index)
	if x == 4 {
		panic("amx: SP cannot be an index")
	}
	out := append(vex3(0, x>>3, b>>3, 0, pp), opcode)
	mod := byte(2)
	switch {
	case disp == 0 && b&7 != 5:
		mod = 0
	case disp >= -128 && disp < 128:
		mod = 1
	}
	out = append(out, mod<<6|tile<<3|4, (x&7)<<3|b&7)
	switch mod {
	case 1:
		out = append(out, byte(int8(disp)))
	case 2:
		out = append(out, byte(disp), byte(disp>>8), byte(disp>>16), byte(disp>>24))
	}
	return out
}

func ldtilecfg(base Register) {
	b := gpIndex(base)
	if b&7 == 4 || b&7 == 5 {
		panic("amx: ldtilecfg base must not be SP, BP, R12 or R13")
	}
	amxInst(fmt.Sprintf("LDTILECFG (%s)", base.Asm()), []Register{base},
		append(vex3(0, 0, b>>3, 0, 0), 0x49, b&7)...)
}

func tilerelease() { amxInst("TILERELEASE", nil, 0xc4, 0xe2, 0x78, 0x49, 0xc0) }

func tilezero(t byte) {
	amxInst(fmt.Sprintf("TILEZERO TMM%d", t), nil, append(vex3(0, 0, 0, 0, 3), 0x49, 0xc0|t<<3)...)
}

func tileloadd(t byte, base, stride Register) { tileloaddDisp(t, base, stride, 0) }

func tileloaddDisp(t byte, base, stride Register, disp int32) {
	amxInst(fmt.Sprintf("TILELOADD %d(%s)(%s*1), TMM%d", disp, base.Asm(), stride.Asm(), t), []Register{base, stride},
		sibMem(t, base, stride, disp, 3, 0x4b)...)
}

func tilestored(t byte, base, stride Register, disp int32) {
	amxInst(fmt.Sprintf("TILESTORED TMM%d, %d(%s)(%s*1)", t, disp, base.Asm(), stride.Asm()), []Register{base, stride},
		sibMem(t, base, stride, disp, 2, 0x4b)...)
}

// tdpbssd adds to tile c the products of the signed bytes of tiles a and b.
func tdpbssd(c, a, b byte) {
	amxInst(fmt.Sprintf("TDPBSSD TMM%d, TMM%d, TMM%d", b, a, c), nil,
		append(vex3(0, 0, 0, b, 3), 0x5e, 0xc0|c<<3|a)...)
}

// genAMXPanels emits func(a *byte, astride, astep int, dw *float32, p
// *byte, pstride, np, nb int, out *float32, outstrideBytes int, buf *byte): the
// dots of sixteen weight rows with np panels (16·np activation rows). Block
// b of weight row r has its 32 signed quants at a + b*astep + r*astride and
// its scale as float32 at dw[16b + r]; the panels are at p + q*pstride. The
// dot of weight row r and activation row c is stored at out + 4r +
// c*outstrideBytes. buf is 4 KiB of scratch.
func genAMXPanels() {
	name := "amxPanelsQ8_0"
	TEXT(name, NOSPLIT, "func(a *byte, astride, astep int, dw *float32, p *byte, pstride, np, nb int, out *float32, outstrideBytes int, buf *byte)")
	Doc(name+" stores at out + r*4 + c*outstrideBytes the dot product of nb blocks of signed quants",
		"(block b of row r at a + b*astep + r*astride, its scale at dw[16b+r]) and activation row c%16",
		"of the Q8_0 panel at p + (c/16)*pstride, for r < 16 and c < 16*np. buf is 4 KiB of scratch.")
	Comment("Needs AMX-TILE, AMX-INT8 (with the OS's permission) and AVX512-F.")
	// Pinned operands of the tile instructions.
	aPtr, aStride, bPtr, s64, cBuf := RSI, RDI, R8, R9, R10
	LEAQ(amxTileCfg, cBuf)
	ldtilecfg(cBuf)
	Load(Param("astride"), aStride)
	MOVQ(U32(64), s64)
	Load(Param("buf"), cBuf)
	p := Load(Param("p"), GP64())
	np := Load(Param("np"), GP64())
	out := Load(Param("out"), GP64())
	iota, zero := amxOutputConsts()

	Label(name + "_panel")
	MOVQ(p, bPtr)
	Load(Param("a"), aPtr)
	dw := Load(Param("dw"), GP64())
	nb := Load(Param("nb"), GP64())
	accs := amxAccumulators(zero)
	// Block b's tiles load, multiply and store (stage b) two blocks ahead
	// of the scaling and adding of its sums (tail b); after a stage the
	// tile pointers are at the next block, and dw stays at the tail's.
	stage := func(k int) {
		tileloadd(amxA[k%2], aPtr, aStride)
		tileloadd(amxB[k%2], bPtr, s64)
		tilezero(amxC[k])
		tdpbssd(amxC[k], amxA[k%2], amxB[k%2])
		tilestored(amxC[k], cBuf, s64, int32(1024*k))
		ADDQ(paramMem("astep"), aPtr)
		ADDQ(U32(panelBlock), bPtr)
	}
	tail := func(k, back int) { // the block back blocks behind the tile pointers
		dy := ZMM()
		VMOVUPS(Mem{Base: bPtr, Disp: panelScales - back*panelBlock}, dy)
		for r := range 16 {
			sums, d := ZMM(), ZMM()
			VCVTDQ2PS(Mem{Base: cBuf, Disp: 1024*k + 64*r}, sums)
			VMULPS_BCST(Mem{Base: dw, Disp: 4 * r}, dy, d)
			VFMADD231PS(sums, d, accs[r])
		}
		ADDQ(U32(64), dw)
	}
	drain := func(k, pending int) string { return fmt.Sprintf("%s_drain%d%d", name, k, pending) }
	next := func(to string) {
		DECQ(nb)
		JZ(LabelRef(to))
	}
	stage(0)
	next(drain(0, 1))
	stage(1)
	next(drain(0, 2))
	Label(name + "_blocks")
	for k := range 4 {
		stage((k + 2) % 4)
		tail(k, 3)
		next(drain((k+1)%4, 2))
	}
	JMP(LabelRef(name + "_blocks"))
	for k := range 4 {
		Label(drain(k, 2))
		tail(k, 2)
		tail((k+1)%4, 1)
		JMP(LabelRef(name + "_done"))
	}
	Label(drain(0, 1))
	tail(0, 1)
	Label(name + "_done")

	storeTransposed(accs, cBuf, iota, zero, out, paramMem("outstrideBytes"))
	ADDQ(paramMem("pstride"), p)
	DECQ(np)
	JNZ(LabelRef(name + "_panel"))
	tilerelease()
	VZEROUPPER()
	RET()
}

// genAMXScales emits func(w *byte, wstride, bstride, nb int, dw *float32):
// the float32 scales of nb blocks of sixteen rows (row r at w +
// r*wstride, blocks bstride bytes apart, each starting with its f16
// scale), stored as dw[16b + r].
func genAMXScales() {
	name := "amxScales"
	TEXT(name, NOSPLIT, "func(w *byte, wstride, bstride, nb int, dw *float32)")
	Doc(name + " stores at dw[16b+r] the f16 scale at w + r*wstride + b*bstride as float32, for r < 16 and b < nb.")
	Comment("Needs AVX512-F.")
	w := Load(Param("w"), GP64())
	ws := Load(Param("wstride"), GP64())
	bs := Load(Param("bstride"), GP64())
	nb := Load(Param("nb"), GP64())
	dw := Load(Param("dw"), GP64())
	// Row offsets: r*wstride (dwords: rows are less than 2 GiB apart).
	idx, t := ZMM(), ZMM()
	VPBROADCASTD(ws.(GPVirtual).As32(), t)
	VMOVDQU32(amxIota, idx)
	VPSRLD(U8(6), idx, idx) // 0, 1, …, 15
	VPMULLD(t, idx, idx)
	Label(name + "_block")
	k, v, h, f := K(), ZMM(), YMM(), ZMM()
	KXNORW(k, k, k)
	VPGATHERDD(Mem{Base: w, Index: idx, Scale: 1}, k, v)
	VPMOVDW(v, h) // the low half of each dword: the scale
	VCVTPH2PS(h, f)
	VMOVUPS(f, Mem{Base: dw})
	ADDQ(bs, w)
	ADDQ(U32(64), dw)
	DECQ(nb)
	JNZ(LabelRef(name + "_block"))
	VZEROUPPER()
	RET()
}

// genAMXUnpack emits func(w *byte, wstride, nb int, a *byte): the signed
// quants of nb 4-bit blocks (Q4_0 or IQ4_NL: an f16 scale, then 16 bytes
// of nibbles, low nibbles first) of sixteen rows, mapped through the
// type's table of sixteen values (twice, for both lanes) and stored as A
// tiles: block b of row r at a + 512b + 32r.
func genAMXUnpack(typ string, table Mem) {
	name := "amxUnpack" + typ
	TEXT(name, NOSPLIT, "func(w *byte, wstride, nb int, a *byte)")
	Doc(name+" stores at a + 512b + 32r the 32 signed quants of the "+typ+" block b",
		"("+fmt.Sprint(block.Q4_0Bytes)+" bytes) of row r at w + r*wstride, for r < 16 and b < nb.")
	w := Load(Param("w"), GP64())
	ws := Load(Param("wstride"), GP64())
	a := Load(Param("a"), GP64())
	tbl, mask := YMM(), YMM()
	VMOVDQU(table, tbl)
	VMOVDQU(mask0F, mask)
	rows := GP64()
	MOVQ(U32(16), rows)
	Label(name + "_row")
	x, dst := GP64(), GP64()
	MOVQ(w, x)
	MOVQ(a, dst)
	nb := Load(Param("nb"), GP64())
	Label(name + "_block")
	lo, hi := XMM(), XMM()
	VMOVDQU(Mem{Base: x, Disp: 2}, lo)
	VPSRLW(U8(4), lo, hi)
	q := YMM()
	VINSERTI128(U8(1), hi, lo.AsY(), q)
	VPAND(mask, q, q)
	VPSHUFB(q, tbl, q)
	VMOVDQU(q, Mem{Base: dst})
	ADDQ(U32(block.Q4_0Bytes), x)
	ADDQ(U32(512), dst)
	DECQ(nb)
	JNZ(LabelRef(name + "_block"))
	ADDQ(ws, w)
	ADDQ(U32(32), a)
	DECQ(rows)
	JNZ(LabelRef(name + "_row"))
	VZEROUPPER()
	RET()
}

// amxOutputConsts loads the AMX panel kernels' constants: amxIota (for
// storeTransposed) and a zero register.
func amxOutputConsts() (iota, zero VecVirtual) {
	iota, zero = ZMM(), ZMM()
	VMOVDQU32(amxIota, iota)
	VPXORD(zero, zero, zero)
	return iota, zero
}

// amxAccumulators returns sixteen zeroed accumulators (one per weight row)
// for a panel, copied from zero: a zeroing xor would read each, keeping it
// live across the panels.
func amxAccumulators(zero VecVirtual) []VecVirtual {
	accs := make([]VecVirtual, 16)
	for r := range accs {
		accs[r] = ZMM()
		VMOVDQA64(zero, accs[r])
	}
	return accs
}

// storeTransposed stores the AMX panel kernels' sixteen accumulators (acc r:
// weight row r, lane c: activation row c) as sixteen output rows of sixteen
// floats, row c at out + c*outstride (bytes), leaving out at row 16: the
// accumulators go to buf (1 KiB) row by row, and each output row is a
// gather of a column (iota: its byte offsets).
func storeTransposed(accs []VecVirtual, buf Register, iota, zero VecVirtual, out Register, outstride Op) {
	for r := range 16 {
		VMOVUPS(accs[r], Mem{Base: buf, Disp: 64 * r})
	}
	k := K() // one mask for all: a KXNORW reads it, so each would live from the start
	for c := range 16 {
		v := ZMM()
		VMOVDQA64(zero, v) // the gather merges into v: without a write first, v would live from the start
		KXNORW(k, k, k)
		VPGATHERDD(Mem{Base: buf, Index: iota, Scale: 1, Disp: 4 * c}, k, v)
		VMOVUPS(v, Mem{Base: out})
		ADDQ(outstride, out)
	}
}

func genAMX() {
	amxConstants()
	amxKConstants()
	genAMXPanels()
	genAMXScales()
	genAMXUnpack("Q4_0", amxValuesQ4_0)
	genAMXUnpack("IQ4NL", kvalues)
	for _, k := range panelKKinds {
		genAMXPrepK(k)
	}
	genAMXPanelsK(true)
	genAMXPanelsK(false)
}

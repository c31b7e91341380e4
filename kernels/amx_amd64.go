//go:build !purego

package kernels

import (
	"github.com/llqt/llqt/formats/block"
	"github.com/llqt/llqt/formats/ggml"
	"golang.org/x/sys/cpu"
)

// hasAMX reports whether the AMX set can run: the CPU has AMX-TILE and
// AMX-INT8 (Intel Sapphire Rapids and later) besides the zmm kernels, and
// the OS granted the process the tile data state, which it asks for once,
// here (requestTileData). Without the grant the first tile instruction
// would fault.
var hasAMX = hasZMM && cpu.X86.HasAMXTile && cpu.X86.HasAMXInt8 && requestTileData()

// amxRows is the weight rows an AMX tile kernel takes: one tile, a task's
// rows (rowTile).
const amxRows = 16

// The tasks' rows are one tile (a negative constant would not compile).
const _ = uint(rowTile-amxRows) + uint(amxRows-rowTile)

// amxBuf is the AMX panel kernel's scratch: four int32 sums tiles of 1 KiB,
// one per block in flight, the first reused to transpose the outputs.
const amxBuf = 4096

// An amxWeights says how the AMX panel kernel reads a weight type's blocks
// (see kernels/_asm/amx.go): in place where its quants are signed bytes
// (Q8_0), else unpacked per task into signed bytes.
type amxWeights struct {
	blockBytes int
	unpack     func(w *byte, wstride, nb int, a *byte) // nil: quants in place, after the f16 scale
}

// amxTypes are the weight types with AMX panels: the Q8_0 family, whose
// activations are Q8_0 panels.
var amxTypes = []struct {
	typ ggml.Type
	w   amxWeights
}{
	{ggml.TypeQ8_0, amxWeights{block.Q8_0Bytes, nil}},
	{ggml.TypeQ4_0, amxWeights{block.Q4_0Bytes, amxUnpackQ4_0}},
	{ggml.TypeIQ4_NL, amxWeights{block.IQ4_NLBytes, amxUnpackIQ4NL}},
}

// task computes the amxRows weight rows at r0 times the whole panels of
// activation rows [i0,iEnd) with the AMX panel kernel: the rows' scales
// (and, for 4-bit types, their quants) are unpacked once, then serve every
// panel.
func (aw *amxWeights) task(j *mmJob, p *mmPart, r0, i0, iEnd int) {
	m, wrow := &p.m, p.wrow
	nb := m.Cols / block.QK
	size := amxBuf + nb*amxRows*4
	if aw.unpack != nil {
		size += nb * amxRows * block.QK
	}
	scratch := getScratch(size)
	defer actPool.Put(scratch)
	s := (*scratch)[:size]
	w := m.Data[r0*wrow : (r0+amxRows)*wrow]
	dw := s[amxBuf : amxBuf+nb*amxRows*4]
	amxScales(&w[0], wrow, aw.blockBytes, nb, f32p(dw))
	a, astride, astep := &w[2], wrow, aw.blockBytes
	if aw.unpack != nil {
		unpacked := s[amxBuf+len(dw) : size]
		aw.unpack(&w[0], wrow, nb, &unpacked[0])
		a, astride, astep = &unpacked[0], block.QK, amxRows*block.QK
	}
	panels, _, np, out := j.amxSpan(p, r0, i0, iEnd)
	amxPanelsQ8_0(a, astride, astep, f32p(dw), &panels[0], j.panelBytes, np, nb, &out[0], 4*m.Rows, &s[0])
}

// amxSpan is what an AMX task's kernel call covers: the whole panels of
// activation rows [i0,iEnd) (the first is panel pi, np of them), and the
// outputs of the amxRows weight rows at r0 for them.
func (j *mmJob) amxSpan(p *mmPart, r0, i0, iEnd int) (panels []byte, pi, np int, out []float32) {
	pb, rows := j.panelBytes, p.m.Rows
	pi, np = i0/panelRows, (iEnd-i0)/panelRows
	return j.panels[pi*pb : (pi+np)*pb], pi, np, p.dst[i0*rows+r0 : (iEnd-1)*rows+r0+amxRows]
}

// The K-quant AMX kernels' layouts (kernels/_asm/amxk.go): a prepared
// block of sixteen weight rows, and the kernel's scratch (two sets of four
// int32 sums tiles). amxKSums (matmul.go) is the split group sums of a
// panel block.
const (
	amxKBlock = 9 * 1024
	amxKBuf   = 8192
)

// An amxKWeights is a K-quant's AMX tile kernels: prep readies a task's
// sixteen weight rows, panels multiplies them with the Q8_K panels (and,
// for types with mins, the panels' split group sums).
type amxKWeights struct {
	prep   func(w *byte, wstride, nb int, a *byte, dh *byte)
	panels func(a *byte, dw *float32, p *byte, pstride int, bs *byte, bsstride, np, nb int, out *float32, outstrideBytes int, buf *byte)
	mins   bool
}

// amxKTypes are the K-quants with AMX panels.
var amxKTypes = []struct {
	typ ggml.Type
	w   amxKWeights
}{
	{ggml.TypeQ4_K, amxKWeights{amxPrepQ4_K, amxPanelsKMins, true}},
	{ggml.TypeQ5_K, amxKWeights{amxPrepQ5_K, amxPanelsKMins, true}},
	{ggml.TypeQ6_K, amxKWeights{amxPrepQ6_K, amxPanelsKPlain, false}},
	{ggml.TypeIQ4_XS, amxKWeights{amxPrepIQ4_XS, amxPanelsKPlain, false}},
}

// task computes the amxRows weight rows at r0 times the whole panels of
// activation rows [i0,iEnd): the rows are prepared once (split scaled
// quants, coefficients, scales), then serve every panel.
func (aw *amxKWeights) task(j *mmJob, p *mmPart, r0, i0, iEnd int) {
	m, wrow := &p.m, p.wrow
	nb := m.Cols / block.QK_K
	size := amxKBuf + nb*amxKBlock + nb*64 + nb*128
	scratch := getScratch(size)
	defer actPool.Put(scratch)
	s := (*scratch)[:size]
	buf, a := s[:amxKBuf], s[amxKBuf:amxKBuf+nb*amxKBlock]
	dh := s[amxKBuf+len(a) : amxKBuf+len(a)+nb*64]
	dw := f32View(s[amxKBuf+len(a)+len(dh):], 32*nb)
	w := m.Data[r0*wrow : (r0+amxRows)*wrow]
	aw.prep(&w[0], wrow, nb, &a[0], &dh[0])
	F16ToF32(dw, dh)
	panels, pi, np, out := j.amxSpan(p, r0, i0, iEnd)
	bs, bss := &buf[0], 0 // not read without mins
	if aw.mins {
		bss = nb * amxKSums
		bs = &j.amxSums[pi*bss : (pi+np)*bss][0]
	}
	aw.panels(&a[0], &dw[0], &panels[0], j.panelBytes, bs, bss, np, nb, &out[0], 4*m.Rows, &buf[0])
}

// installAMX gives the AMX set's weight types their tile kernels.
func installAMX() {
	for _, t := range amxTypes {
		installed[t.typ].amx = t.w.task
	}
	for _, t := range amxKTypes {
		installed[t.typ].amx = t.w.task
		installed[t.typ].amxSums = t.w.mins
	}
}

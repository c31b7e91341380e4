package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/llqt/llqt/formats/block"
	"github.com/llqt/llqt/formats/ggml"
)

// Matrix is a row-major weight matrix in GGUF layout: Rows rows of Cols
// elements of Type, raw bytes (typically mmap'd).
type Matrix struct {
	Type       ggml.Type
	Data       []byte
	Rows, Cols int
}

// The vector kernels in use (the KV cache's f16 dots and conversions):
// the Go reference, replaced by assembly where a kernel set provides it.
var (
	dotF32Impl    = dotF32SliceGo
	dotF16F32Impl = dotF16F32Go
	axpyF16Impl   = axpyF16Go
	f16ToF32Impl  = f16ToF32Go
	f32ToF16Impl  = f32ToF16Go
	bf16ToF32Impl = bf16ToF32Go
	roundF16Impl  = roundF16Go
	roundBF16Impl = roundBF16Go
)

// A dot4Func computes the dots of one weight row with the four activation
// rows at a, a+astride, a+2*astride, a+3*astride (bytes), storing them at
// out[0], out[outstride], out[2*outstride], out[3*outstride]. It gives the
// same bits as four dotFunc calls; it exists because decoding a weight block
// once for four activation rows is cheaper in prompt batches.
type dot4Func func(w, a []byte, astride, n int, out []float32, outstride int)

// A rows4Func computes the dots of the rows weight rows at w + r*wstride
// (bytes) with the four activation rows at a + c*astride, storing them at
// out[r + c*outstride]. It gives the same bits as a dot4Func call per row;
// one call covers a task's rows, which matters where the dots are short
// (the attention scores: 64 or 128 elements).
type rows4Func func(w []byte, wstride int, a []byte, astride, n, rows int, out []float32, outstride int)

// A tileFunc computes the dots of the four weight rows at w + r*wstride
// (bytes) with the four activation rows at a + c*astride, storing them at
// out[r + c*outstride] (r, c < 4). It gives the same bits as sixteen
// dotFunc calls; each loaded block serves four dots, and the integer block
// sums of four dots share one convert and multiply-add, which is what
// prompt batches need.
type tileFunc func(w []byte, wstride int, a []byte, astride, n int, out []float32, outstride int)

// A panelFunc computes the dots of the two weight rows at w and w+wstride
// (bytes) with the sixteen activation rows of a panel (see packPanel and
// packPanelQ8K),
// storing them at out[r + c*outstride] (r < 2, c < 16). It gives the same
// bits as 32 dotFunc calls.
type panelFunc func(w []byte, wstride int, panel []byte, n int, out []float32, outstride int)

// A widePanel is a panelFunc over several panels at once, panel q at
// q*pstride in panels giving columns 16q..16q+15 (r < 2, c < 16*panels).
// It gives the same bits as the dotFunc calls. Each unpacked weight dword
// then serves more activation rows (see widePanels for the sets that have
// them).
type widePanel struct {
	panels int
	f      func(w []byte, wstride int, panels []byte, pstride, n int, out []float32, outstride int)
}

// Panels: sixteen Q8_0 activation rows repacked so that a vpdpbusd can
// multiply four quants of a weight row, broadcast, with the same four quants
// of eight activation rows. Per block: 8 steps of 64 bytes, step k holding
// quants 4k..4k+3 of rows 0-7 then of rows 8-15; then the sixteen rows'
// quant sums Σy as int32 (the kernels take bias·Σy off, where weights are
// stored as unsigned bytes u = q + bias); then the sixteen scales as float32.
const (
	panelRows   = 16
	panelSums   = 8 * 64
	panelScales = panelSums + panelRows*4
	panelBlock  = panelScales + panelRows*4
)

// K-quant panels: sixteen Q8_K rows repacked the same way per 256-element
// block (64 steps of 64 bytes); then, for each pair p of 16-quant groups,
// the sixteen rows' group sums (Q8_K bsums 2p and 2p+1) as int16 pairs, 64
// bytes per pair (the kernels meet them with the weights' min or scale
// pairs in one vpmaddwd); then the sixteen scales as float32.
const (
	panelKSums   = 64 * 64
	panelKScales = panelKSums + 8*64
	panelKBlock  = panelKScales + panelRows*4
)

// Word panels, the AVX2 set's panels for Q8_0 and IQ4_XS weights (see
// kernels/_asm/paneli16.go): without VNNI a product of two signed bytes
// costs a sign fix-up, a vpmaddubsw and a vpmaddwd, where int16 operands
// need one vpmaddwd for sixteen products. So both sides are widened first.
// A word panel block holds sixteen activation rows (Q8_0 or Q8_K) as per/2
// steps of 64 bytes, step s holding quants 2s and 2s+1 of rows 0-7 then of
// rows 8-15 as int16, then the sixteen scales as float32. The weight rows
// are widened once per task (see wordTask) into blocks of the scale as
// float32 and the quants as int16.
func wordPanelBlock(per int) int { return per/2*4*panelRows + panelRows*4 }

// A wordForm is a weight type's widened form for the word panels.
type wordForm struct {
	per   int // elements per block
	bytes int // widened bytes per block
	// widen writes the nb blocks of row to dst (nb*bytes bytes).
	widen func(dst, row []byte, nb int)
}

// packWordPanel repacks the panelRows rows of nb blocks of per elements at
// act (arow bytes apart, blockBytes per block: Q8_0's half or Q8_K's
// float32 scale first) into dst (nb*wordPanelBlock(per) bytes), as int16.
func packWordPanel(dst, act []byte, arow, nb, per, blockBytes int) {
	qOff, scales := 2, per/2*4*panelRows
	if per == block.QK_K {
		qOff = 4
	}
	packRows(dst, act, arow, nb, blockBytes, wordPanelBlock(per), func(out, blk []byte, c int) {
		q := blk[qOff : qOff+per]
		for s := range per / 2 {
			lo, hi := uint16(int16(int8(q[2*s]))), uint16(int16(int8(q[2*s+1])))
			binary.LittleEndian.PutUint32(out[4*panelRows*s+4*c:], uint32(lo)|uint32(hi)<<16)
		}
		d := binary.LittleEndian.Uint32(blk) // Q8_K: the float32 scale
		if per == block.QK {
			d = math.Float32bits(f16(blk))
		}
		binary.LittleEndian.PutUint32(out[scales+4*c:], d)
	})
}

// packPanel repacks the panelRows Q8_0 rows of nb blocks at act (arow bytes
// apart) into dst (nb*panelBlock bytes).
func packPanel(dst, act []byte, arow, nb int) {
	packRows(dst, act, arow, nb, block.Q8_0Bytes, panelBlock, func(out, blk []byte, c int) {
		sum := int32(0)
		scatterDwords(out, blk[2:block.Q8_0Bytes], c)
		for _, q := range blk[2:block.Q8_0Bytes] {
			sum += int32(int8(q))
		}
		binary.LittleEndian.PutUint32(out[panelSums+4*c:], uint32(sum))
		binary.LittleEndian.PutUint32(out[panelScales+4*c:], math.Float32bits(f16(blk)))
	})
}

// packPanelQ8K repacks the panelRows Q8_K rows of nb blocks at act (arow
// bytes apart) into dst (nb*panelKBlock bytes).
func packPanelQ8K(dst, act []byte, arow, nb int) {
	packRows(dst, act, arow, nb, block.Q8_KBytes, panelKBlock, func(out, blk []byte, c int) {
		scatterDwords(out, blk[4:4+block.QK_K], c)
		scatterDwords(out[panelKSums:], blk[4+block.QK_K:4+block.QK_K+32], c) // bsum pairs
		copy(out[panelKScales+4*c:panelKScales+4*c+4], blk[:4])
	})
}

// packRows walks the panelRows activation rows of nb blocks of blockBytes
// at act (arow bytes apart) and hands each block, with the panel block of
// panelBytes in dst it goes into and its row c, to pack. Both panel formats
// interleave their rows this way.
func packRows(dst, act []byte, arow, nb, blockBytes, panelBytes int, pack func(out, blk []byte, c int)) {
	dst = dst[:nb*panelBytes]
	for c := range panelRows {
		row := act[c*arow : c*arow+nb*blockBytes]
		for b := range nb {
			pack(dst[b*panelBytes:(b+1)*panelBytes], row[b*blockBytes:(b+1)*blockBytes], c)
		}
	}
}

// scatterDwords copies the bytes of activation row c, four at a time, into a
// panel block's interleaved layout: dword k goes to out[64k+4c:], beside
// dword k of the other fifteen rows, so that one 64-byte load gives the
// panel kernels (vpdpbusd) that dword of all sixteen rows.
func scatterDwords(out, row []byte, c int) {
	for k := range len(row) / 4 {
		copy(out[4*panelRows*k+4*c:4*panelRows*k+4*c+4], row[4*k:4*k+4])
	}
}

// panelBlockBytes is the size of one packed panel block in format f (which
// must have panel kernels: Q8_0 or Q8_K).
func (f actFormat) panelBlockBytes() int {
	if f == actQ8_K {
		return panelKBlock
	}
	return panelBlock
}

// panelBytes is the size of one packed panel of cols columns in format f
// (which must have panel kernels: Q8_0 or Q8_K), as word panels if words.
func (f actFormat) panelBytes(cols int, words bool) int {
	per := actLayouts[f].elems
	switch {
	case words:
		return cols / per * wordPanelBlock(per)
	case f == actQ8_K:
		return cols / block.QK_K * panelKBlock
	}
	return cols / block.QK * panelBlock
}

// packPanel repacks the panelRows converted rows at act (arow bytes apart,
// cols columns) into dst, as a word panel if words.
func (f actFormat) packPanel(dst, act []byte, arow, cols int, words bool) {
	switch {
	case words:
		per := actLayouts[f].elems
		packWordPanel(dst, act, arow, cols/per, per, actLayouts[f].bytes)
	case f == actQ8_K:
		packPanelQ8K(dst, act, arow, cols/block.QK_K)
	default:
		packPanel(dst, act, arow, cols/block.QK)
	}
}

// A rowsFunc stores in out[r] the dot of weight row r of w (rows
// consecutive rows of n elements) with the activation row a. It gives the
// same bits as a dotFunc per row, without a call per row.
type rowsFunc func(w, a []byte, n, rows int, out []float32)

// actFormat says how activations are converted for one weight type.
type actFormat int

const (
	actF32 actFormat = iota
	actF16
	actBF16
	actQ8_0
	actQ8_1
	actQ8_K
)

// actLayouts gives, per activation format, the elements and bytes of one
// converted block (one element for the plain types, which keep their
// activations as float32).
var actLayouts = [...]struct{ elems, bytes int }{
	actF32:  {1, 4},
	actF16:  {1, 4},
	actBF16: {1, 4},
	actQ8_0: {block.QK, block.Q8_0Bytes},
	actQ8_1: {block.QK, block.Q8_1Bytes},
	actQ8_K: {block.QK_K, block.Q8_KBytes},
}

// blockBytes is the size of one converted activation block: the bytes that
// go with one block of the weight types taking this format.
func (f actFormat) blockBytes() int { return actLayouts[f].bytes }

// rowBytes is the size of one converted activation row of cols elements.
func (f actFormat) rowBytes(cols int) int { return cols / actLayouts[f].elems * actLayouts[f].bytes }

func (f actFormat) convert(dst []byte, x []float32) {
	switch f {
	case actF16:
		roundF16Impl(f32View(dst, len(x)), x)
	case actBF16:
		roundBF16Impl(f32View(dst, len(x)), x)
	case actQ8_0:
		quantizeRowQ8_0(dst, x)
	case actQ8_1:
		quantizeRowQ8_1(dst, x)
	case actQ8_K:
		quantizeRowQ8_K(dst, x)
	}
}

// A kernelRow is what MatMul runs for one weight type: the format its
// activations are converted to, its dot, and the kernels of other shapes
// that the installed kernel set provides (nil where it has none; MatMul
// then uses dot). Every kernel of a row gives the same bits as dot.
type kernelRow struct {
	act   actFormat
	dot   dotFunc
	rows  rowsFunc
	dot4  dot4Func
	rows4 rows4Func // plain weight types only
	tile  tileFunc
	panel panelFunc   // weight types with Q8_0 or Q8_K activations only
	wide  []widePanel // widest first
	// quad, with wide only, takes four weight rows (at w + r*wstride)
	// times four panels, as wide takes two.
	quad widePanel
	// words, where set, makes panel a word-panel kernel: it takes weight
	// rows widened by words.widen, and word panels.
	words *wordForm
	// amx, with panel only, computes a task's rowTile weight rows times
	// its whole panels with AMX tiles (the AMX set; see amx_amd64.go);
	// amxSums says that it reads the panels' split group sums.
	amx     amxTaskFunc
	amxSums bool
}

// An amxTaskFunc computes the rowTile weight rows at r0 of part p times the
// whole panels of activation rows [i0,iEnd).
type amxTaskFunc func(j *mmJob, p *mmPart, r0, i0, iEnd int)

// goKernels is the pure-Go reference: a row per supported weight type with
// its activation format and dot. Kernel sets start from it.
var goKernels = []struct {
	typ ggml.Type
	act actFormat
	dot dotFunc
}{
	{ggml.TypeF32, actF32, dotF32Go},
	{ggml.TypeF16, actF16, dotF16ActGo},
	{ggml.TypeBF16, actBF16, dotBF16ActGo},
	{ggml.TypeQ4_0, actQ8_0, block.DotQ4_0Q8_0},
	{ggml.TypeQ4_1, actQ8_1, block.DotQ4_1Q8_1},
	{ggml.TypeQ5_0, actQ8_0, block.DotQ5_0Q8_0},
	{ggml.TypeQ5_1, actQ8_1, block.DotQ5_1Q8_1},
	{ggml.TypeQ8_0, actQ8_0, block.DotQ8_0Q8_0},
	{ggml.TypeIQ4_NL, actQ8_0, block.DotIQ4_NLQ8_0},
	{ggml.TypeQ2_K, actQ8_K, block.DotQ2_KQ8_K},
	{ggml.TypeQ3_K, actQ8_K, block.DotQ3_KQ8_K},
	{ggml.TypeQ4_K, actQ8_K, block.DotQ4_KQ8_K},
	{ggml.TypeQ5_K, actQ8_K, block.DotQ5_KQ8_K},
	{ggml.TypeQ6_K, actQ8_K, block.DotQ6_KQ8_K},
	{ggml.TypeIQ4_XS, actQ8_K, block.DotIQ4_XSQ8_K},
	{ggml.TypeIQ2_XXS, actQ8_K, block.DotIQ2_XXSQ8_K},
	{ggml.TypeIQ2_XS, actQ8_K, block.DotIQ2_XSQ8_K},
	{ggml.TypeIQ2_S, actQ8_K, block.DotIQ2_SQ8_K},
	{ggml.TypeIQ3_XXS, actQ8_K, block.DotIQ3_XXSQ8_K},
	{ggml.TypeIQ3_S, actQ8_K, block.DotIQ3_SQ8_K},
	{ggml.TypeTQ1_0, actQ8_K, block.DotTQ1_0Q8_K},
	{ggml.TypeTQ2_0, actQ8_K, block.DotTQ2_0Q8_K},
	{ggml.TypeIQ1_S, actQ8_K, block.DotIQ1_SQ8_K},
	{ggml.TypeIQ1_M, actQ8_K, block.DotIQ1_MQ8_K},
}

// installed holds the kernel row of every supported weight type for the
// active kernel set (see install).
var installed = goRows()

// goRows returns the rows of the pure-Go reference.
func goRows() map[ggml.Type]*kernelRow {
	rows := make(map[ggml.Type]*kernelRow, len(goKernels))
	for _, k := range goKernels {
		rows[k.typ] = &kernelRow{act: k.act, dot: k.dot}
	}
	return rows
}

// kernelFor returns the activation format and dot kernel for weight type t.
func kernelFor(t ggml.Type) (actFormat, dotFunc, bool) {
	if k, ok := installed[t]; ok {
		return k.act, k.dot, true
	}
	return 0, nil, false
}

// Supported reports whether MatMul handles weights of type t.
func Supported(t ggml.Type) bool {
	_, _, ok := kernelFor(t)
	return ok
}

// Work split. A task covers rowTile weight rows (times colTile activation rows
// for prompt batches), so that a weight row stays in L1 while it meets a tile
// of activations that fits in L2.
const (
	rowTile = 16
	colTile = 64
	// wordColTile is the column tile of jobs with word panels, whose tasks
	// widen their weight rows first: widening once per 64 columns took 8%
	// of a Q8_0 prompt batch (it is the first touch of the weights, and
	// waits on memory). The task then holds its sixteen widened rows and
	// one panel at a time in L2, not its whole column tile.
	wordColTile = 256
	// amxColTile is the column tile of jobs with AMX tile kernels, whose
	// tasks unpack their weight rows' scales (and 4-bit quants) first.
	amxColTile = 256
)

// streamBytes bounds the weight bytes of one matrix-vector task (see
// addPart). Measured on BenchmarkMatVecDRAM (Q4_K, 2 threads, quiet
// machine): 16-row tasks 17-18 GB/s, 128 KiB 23-24, 256 KiB and more 28-30.
// On TinyLlama decode (tg32, 2 threads, load ~2.5, alternated): 64 KiB
// 23-26 t/s, 256 KiB 25-29, 1 MiB 28-32, 4 MiB 22-26 (too few chunks to
// balance a thread that gets less CPU).
const streamBytes = 1 << 20

func ceilDiv(a, b int) int { return (a + b - 1) / b }

var actPool sync.Pool // *[]byte scratch for converted activations

// maxParts bounds the matrices one MatMulMany call multiplies together.
const maxParts = 4

// A mmPart is one matrix of a product job.
type mmPart struct {
	dst       []float32
	m         Matrix
	dot       dotFunc
	dot4      dot4Func
	rows4     rows4Func
	tile      tileFunc
	rows      rowsFunc
	panel     panelFunc
	wide      []widePanel // with panel only
	quad      widePanel   // with wide only
	words     *wordForm   // with panel only: panel takes word panels
	amx       amxTaskFunc // with panel only
	wrow      int
	rowTile   int // rows per task
	rowTasks  int
	firstTask int // index of the part's first task in the job
}

// A mmJob is one MatMul or MatMulMany call in flight. Jobs are pooled and
// their task functions bound once, so that a call allocates nothing.
type mmJob struct {
	runTask    func(task int) // bound to (*mmJob).task
	convertRow func(i int)    // bound to (*mmJob).convert
	packPanel  func(pi int)   // bound to (*mmJob).pack
	parts      [maxParts]mmPart
	nparts     int
	x          []float32
	act        []byte
	arow       int
	panels     []byte // packed panels of the activations, when a part uses them
	panelBytes int    // bytes per panel
	hasPanels  bool   // a part uses panels; words says which kind
	words      bool
	// amxSums holds the panels' split group sums (packAMXSums) when a
	// part's AMX kernels read them (amxK).
	amxSums  []byte
	amxK     bool
	cols     int
	n        int
	colTile  int // activation rows per task
	colTasks int
	threads  int
	format   actFormat
}

var jobPool = sync.Pool{New: func() any {
	j := new(mmJob)
	j.runTask = j.task
	j.convertRow = j.convert
	j.packPanel = j.pack
	return j
}}

func (j *mmJob) convert(i int) {
	j.format.convert(j.act[i*j.arow:(i+1)*j.arow], j.x[i*j.cols:(i+1)*j.cols])
}

// task computes one tile: up to rowTile rows of one part times up to
// colTile activation rows.
func (j *mmJob) task(task int) {
	p := &j.parts[0]
	for k := 1; k < j.nparts && task >= j.parts[k].firstTask; k++ {
		p = &j.parts[k]
	}
	task -= p.firstTask
	m, act, arow, dst, wrow := &p.m, j.act, j.arow, p.dst, p.wrow
	r0 := task % p.rowTasks * p.rowTile
	i0 := task / p.rowTasks * j.colTile
	r1 := min(r0+p.rowTile, m.Rows)
	i1 := min(i0+j.colTile, j.n)
	if p.rows != nil && i1-i0 < 4 {
		for i := i0; i < i1; i++ {
			j.column(p, r0, r1, i)
		}
		return
	}
	if p.panel != nil { // run packed the panels
		j.panelTask(p, r0, r1, i0, i1)
		return
	}
	r := r0
	if p.tile != nil && i1-i0 >= 4 {
		for ; r+4 <= r1; r += 4 {
			w := m.Data[r*wrow : (r+4)*wrow]
			i := i0
			for ; i+4 <= i1; i += 4 {
				p.tile(w, wrow, act[i*arow:(i+4)*arow], arow, m.Cols, dst[i*m.Rows+r:], m.Rows)
			}
			for ; i < i1; i++ {
				j.column(p, r, r+4, i)
			}
		}
	}
	// The rest of the rows: groups of four activation rows in one call over
	// all of them where there is a rows4 kernel, else a four-row dot per row;
	// single dots for what is left.
	iDot := i0
	if p.rows4 != nil && r < r1 {
		for ; iDot+4 <= i1; iDot += 4 {
			p.rows4(m.Data[r*wrow:r1*wrow], wrow, act[iDot*arow:(iDot+4)*arow], arow, m.Cols, r1-r, dst[iDot*m.Rows+r:], m.Rows)
		}
	}
	for ; r < r1; r++ {
		w := m.Data[r*wrow : (r+1)*wrow]
		i := iDot
		if p.dot4 != nil {
			for ; i+4 <= i1; i += 4 {
				p.dot4(w, act[i*arow:(i+4)*arow], arow, m.Cols, dst[i*m.Rows+r:], m.Rows)
			}
		}
		for ; i < i1; i++ {
			dst[i*m.Rows+r] = p.dot(w, act[i*arow:(i+1)*arow], m.Cols)
		}
	}
}

// panelTask computes weight rows [r0,r1) times activation rows [i0,i1)
// (i0 a multiple of panelRows) with the panel kernels: four rows at a time
// where there is a four-row kernel, then two at a time, each with as many
// panels at a time as a wide panel kernel takes; the activation rows past
// the last whole panel and an odd last weight row go through column.
func (j *mmJob) panelTask(p *mmPart, r0, r1, i0, i1 int) {
	m, wrow, pb := &p.m, p.wrow, j.panelBytes
	iEnd := i0 + (i1-i0)/panelRows*panelRows
	r := r0
	if p.amx != nil && r1-r0 == rowTile && iEnd > i0 && m.Cols > 0 {
		p.amx(j, p, r0, i0, iEnd)
		r = r1
	}
	if p.words != nil {
		j.wordTask(p, r0, r1, i0, iEnd)
		r = r1 - (r1-r0)%2 // an odd last row goes through column
	}
	if q := p.quad; q.f != nil {
		for ; r+4 <= r1; r += 4 {
			w := m.Data[r*wrow : (r+4)*wrow]
			i := i0
			for ; i+q.panels*panelRows <= iEnd; i += q.panels * panelRows {
				pi := i / panelRows
				q.f(w, wrow, j.panels[pi*pb:(pi+q.panels)*pb], pb, m.Cols, p.dst[i*m.Rows+r:], m.Rows)
			}
			j.pairPanels(p, r, i, iEnd)
			j.pairPanels(p, r+2, i, iEnd)
		}
	}
	for ; r+2 <= r1; r += 2 {
		j.pairPanels(p, r, i0, iEnd)
	}
	if r < r1 {
		for i := i0; i < iEnd; i++ {
			j.column(p, r, r1, i)
		}
	}
	for i := iEnd; i < i1; i++ {
		j.column(p, r0, r1, i)
	}
}

// pairPanels computes weight rows r and r+1 times the whole panels of
// activation rows [i0,iEnd), as many panels at a time as a wide kernel
// takes.
func (j *mmJob) pairPanels(p *mmPart, r, i0, iEnd int) {
	m, wrow, pb := &p.m, p.wrow, j.panelBytes
	w := m.Data[r*wrow : (r+2)*wrow]
panels:
	for i := i0; i < iEnd; {
		pi := i / panelRows
		for _, k := range p.wide {
			if i+k.panels*panelRows <= iEnd {
				k.f(w, wrow, j.panels[pi*pb:(pi+k.panels)*pb], pb, m.Cols, p.dst[i*m.Rows+r:], m.Rows)
				i += k.panels * panelRows
				continue panels
			}
		}
		p.panel(w, wrow, j.panels[pi*pb:(pi+1)*pb], m.Cols, p.dst[i*m.Rows+r:], m.Rows)
		i += panelRows
	}
}

// wordTask is panelTask's part for word panels over the weight rows
// [r0,r1) two at a time: it widens them once, then takes each panel against
// every pair, so that one panel at a time stays in L2 with the rows.
func (j *mmJob) wordTask(p *mmPart, r0, r1, i0, iEnd int) {
	m, wrow, pb := &p.m, p.wrow, j.panelBytes
	pairs := (r1 - r0) / 2
	if pairs == 0 || iEnd <= i0 {
		return
	}
	nb := m.Cols / p.words.per
	rowBytes := nb * p.words.bytes
	scratch := getScratch(2 * pairs * rowBytes)
	defer actPool.Put(scratch)
	ww := *scratch
	for r := range 2 * pairs {
		p.words.widen(ww[r*rowBytes:], m.Data[(r0+r)*wrow:(r0+r+1)*wrow], nb)
	}
	for i := i0; i < iEnd; i += panelRows {
		panel := j.panels[i/panelRows*pb : (i/panelRows+1)*pb]
		for q := range pairs {
			p.panel(ww[2*q*rowBytes:], rowBytes, panel, m.Cols, p.dst[i*m.Rows+r0+2*q:], m.Rows)
		}
	}
}

// column computes weight rows [r0,r1) times activation row i, with the rows
// kernel where there is one (the same bits as single dots).
func (j *mmJob) column(p *mmPart, r0, r1, i int) {
	m, wrow := &p.m, p.wrow
	a, out := j.act[i*j.arow:(i+1)*j.arow], p.dst[i*m.Rows:]
	if p.rows != nil {
		p.rows(m.Data[r0*wrow:r1*wrow], a, m.Cols, r1-r0, out[r0:])
		return
	}
	for r := r0; r < r1; r++ {
		out[r] = p.dot(m.Data[r*wrow:(r+1)*wrow], a, m.Cols)
	}
}

// amxKSums is the bytes of a panel block's split group sums.
const amxKSums = 512

// packAMXSums writes the split group sums of the panelRows Q8_K rows of nb
// blocks at act (arow bytes apart) into dst (nb*amxKSums bytes): per
// block, as B tiles of 4 rows of 64 bytes, bsum g of row c at byte
// 64(g/4) + 4c + g%4, its low six bits (bl) in the first tile and the rest
// (bh, bsum >> 6) in the second.
func packAMXSums(dst, act []byte, arow, nb int) {
	dst = dst[:nb*amxKSums]
	for c := range panelRows {
		row := act[c*arow : c*arow+nb*block.Q8_KBytes]
		for b := range nb {
			bsums := row[b*block.Q8_KBytes+4+block.QK_K : (b+1)*block.Q8_KBytes]
			out := dst[b*amxKSums : (b+1)*amxKSums]
			for g := range 16 {
				v := int16(uint16(bsums[2*g]) | uint16(bsums[2*g+1])<<8)
				at := 64*(g/4) + 4*c + g%4
				out[at] = byte(v & 63)
				out[256+at] = byte(int8(v >> 6))
			}
		}
	}
}

func (j *mmJob) pack(pi int) {
	j.format.packPanel(j.panels[pi*j.panelBytes:(pi+1)*j.panelBytes], j.act[pi*panelRows*j.arow:], j.arow, j.cols, j.words)
	if j.amxK {
		sums := j.cols / block.QK_K * amxKSums
		packAMXSums(j.amxSums[pi*sums:(pi+1)*sums], j.act[pi*panelRows*j.arow:], j.arow, j.cols/block.QK_K)
	}
}

// addPart checks one product and adds it to the job.
func (j *mmJob) addPart(dst []float32, m Matrix, x []float32, n int) {
	k, ok := installed[m.Type]
	if !ok {
		panic(fmt.Sprintf("kernels: MatMul: unsupported weight type %v", m.Type))
	}
	rowSize, ok := m.Type.RowSize(uint64(m.Cols))
	if !ok {
		panic(fmt.Sprintf("kernels: MatMul: %d columns is not a whole number of %v blocks", m.Cols, m.Type))
	}
	wrow := int(rowSize)
	if n <= 0 || m.Rows <= 0 {
		return
	}
	if len(m.Data) < wrow*m.Rows || len(x) < n*m.Cols || len(dst) < n*m.Rows {
		panic(fmt.Sprintf("kernels: MatMul: short slices for %dx%d %v times %d rows (data %d, x %d, dst %d)",
			m.Rows, m.Cols, m.Type, n, len(m.Data), len(x), len(dst)))
	}
	first := 0
	if j.nparts > 0 {
		last := &j.parts[j.nparts-1]
		first = last.firstTask + last.rowTasks*j.colTasks
	}
	tile := rowTile
	if n < 4 {
		// Few activation rows: the product streams the weights from DRAM
		// once, and long sequential runs per thread keep the hardware
		// prefetchers streaming (interleaved 16-row tasks reach about
		// two-thirds of the bandwidth). Cut the rows into a multiple of
		// threads equal chunks of at most about streamBytes, as ggml gives
		// each thread one chunk of a matrix-vector product; the chunks
		// beyond one per thread still balance a thread that falls behind.
		chunks := j.threads * max(1, ceilDiv(m.Rows*wrow, j.threads*streamBytes))
		tile = max(rowTile, ceilDiv(m.Rows, chunks))
	}
	var panel panelFunc
	var wide []widePanel
	var quad widePanel
	var words *wordForm
	var amx amxTaskFunc
	// The parts of a job share one kind of panel: a part that takes the
	// other kind (a rare mix of weight types) uses its tiles instead.
	isWords := k.words != nil
	if n >= panelRows && k.panel != nil && (!j.hasPanels || j.words == isWords) {
		panel, wide, quad, words, amx = k.panel, k.wide, k.quad, k.words, k.amx
		switch {
		case j.nparts > 0:
		case isWords:
			j.setColTile(wordColTile)
		case amx != nil:
			j.setColTile(amxColTile)
		}
		j.amxK = j.amxK || (amx != nil && k.amxSums)
		j.hasPanels, j.words = true, isWords
	}
	j.parts[j.nparts] = mmPart{dst: dst, m: m, dot: k.dot, dot4: k.dot4, rows4: k.rows4, tile: k.tile, rows: k.rows, panel: panel, wide: wide, quad: quad, words: words, amx: amx, wrow: wrow,
		rowTile: tile, rowTasks: (m.Rows + tile - 1) / tile, firstTask: first}
	j.nparts++
}

// run converts the activations and computes every part.
func (j *mmJob) run() {
	threads := j.threads
	if j.nparts == 0 {
		return
	}
	var scratch *[]byte
	j.arow = j.format.rowBytes(j.cols)
	if j.format == actF32 {
		j.act = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(j.x))), 4*j.n*j.cols)
	} else {
		scratch = getScratch(j.n * j.arow)
		j.act = *scratch
		if j.n >= 4 && threads > 1 {
			parallelFor(threads, j.n, j.convertRow)
		} else {
			for i := 0; i < j.n; i++ {
				j.convert(i)
			}
		}
	}
	var packed *[]byte
	if j.hasPanels {
		npanels := j.n / panelRows
		j.panelBytes = j.format.panelBytes(j.cols, j.words)
		sums := 0
		if j.amxK {
			sums = j.cols / block.QK_K * amxKSums
		}
		packed = getScratch(npanels * (j.panelBytes + sums))
		j.panels = *packed
		j.amxSums = j.panels[npanels*j.panelBytes:]
		parallelFor(threads, npanels, j.packPanel)
	}
	last := &j.parts[j.nparts-1]
	parallelFor(threads, last.firstTask+last.rowTasks*j.colTasks, j.runTask)
	if scratch != nil {
		actPool.Put(scratch)
	}
	if packed != nil {
		actPool.Put(packed)
	}
}

func (j *mmJob) release() {
	for k := range j.nparts {
		j.parts[k] = mmPart{}
	}
	j.nparts, j.x, j.act, j.panels, j.amxSums = 0, nil, nil, nil, nil
	j.hasPanels, j.words, j.amxK = false, false, false
	jobPool.Put(j)
}

func newJob(x []float32, cols, n, threads int, format actFormat) *mmJob {
	j := jobPool.Get().(*mmJob)
	j.x, j.cols, j.n, j.threads, j.format = x, cols, n, max(threads, 1), format
	j.setColTile(colTile)
	return j
}

// MatMul computes dst[i*m.Rows+r] = dot(row r of m, x[i*m.Cols:(i+1)*m.Cols])
// for i in [0,n). Work is split across threads goroutines (rows when n is
// small, row×column tiles for prompt batches); each output is computed by one
// goroutine in a fixed order, so the result does not depend on threads.
// It panics if the type is unsupported or the slices are too short, which
// are programming errors of the caller.
func MatMul(dst []float32, m Matrix, x []float32, n int, threads int) {
	format, _, ok := kernelFor(m.Type)
	if !ok {
		panic(fmt.Sprintf("kernels: MatMul: unsupported weight type %v", m.Type))
	}
	j := newJob(x, m.Cols, max(n, 0), threads, format)
	j.addPart(dst, m, x, max(n, 0))
	if n > 0 {
		j.run()
	}
	j.release()
}

// MatMulMany computes MatMul(dsts[k], ms[k], x, n, threads) for every k. The
// matrices share their input (as the query, key and value projections do),
// so it is converted once, and all products are split across the threads in
// one parallel loop. Results are bit-identical to separate MatMul calls.
func MatMulMany(dsts [][]float32, ms []Matrix, x []float32, n int, threads int) {
	if len(dsts) != len(ms) {
		panic(fmt.Sprintf("kernels: MatMulMany: %d destinations for %d matrices", len(dsts), len(ms)))
	}
	if len(ms) == 0 || n <= 0 {
		return
	}
	format, _, ok := kernelFor(ms[0].Type)
	same := ok && len(ms) <= maxParts
	for _, m := range ms[1:] {
		f, _, ok := kernelFor(m.Type)
		same = same && ok && f == format && m.Cols == ms[0].Cols
	}
	if !same {
		for k := range ms {
			MatMul(dsts[k], ms[k], x, n, threads)
		}
		return
	}
	j := newJob(x, ms[0].Cols, n, threads, format)
	for k := range ms {
		j.addPart(dsts[k], ms[k], x, n)
	}
	j.run()
	j.release()
}

// setColTile sets the job's column tile (before its first part is added).
func (j *mmJob) setColTile(tile int) {
	j.colTile, j.colTasks = tile, (j.n+tile-1)/tile
}

func getScratch(size int) *[]byte {
	if p, ok := actPool.Get().(*[]byte); ok && cap(*p) >= size {
		*p = (*p)[:size]
		return p
	}
	b := make([]byte, size)
	return &b
}

// DotF32 returns Σ a[i]*b[i] over len(a) elements (b must be at least as long).
func DotF32(a, b []float32) float32 {
	b = b[:len(a)]
	return dotF32Impl(a, b)
}

// DotF16 returns Σ a[i]*b[i] where a holds len(b) little-endian halves (the
// f16 KV cache) and b float32 values.
func DotF16(a []byte, b []float32) float32 {
	a = a[:2*len(b)]
	return dotF16F32Impl(a, b)
}

// AxpyF16 computes y += alpha*x where x holds len(y) little-endian halves.
func AxpyF16(y []float32, alpha float32, x []byte) {
	x = x[:2*len(y)]
	axpyF16Impl(y, alpha, x)
}

func dotF32SliceGo(a, b []float32) float32 {
	var s float32
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func dotF16F32Go(a []byte, b []float32) float32 {
	var s float32
	for i, v := range b {
		s += f16(a[2*i:]) * v
	}
	return s
}

func axpyF16Go(y []float32, alpha float32, x []byte) {
	for i := range y {
		y[i] += alpha * f16(x[2*i:])
	}
}

// f32p views the start of a byte slice holding float32 values.
func f32p(b []byte) *float32 { return (*float32)(unsafe.Pointer(unsafe.SliceData(b))) }

// f32View views the first 4*n bytes of b (4-byte aligned) as n float32.
func f32View(b []byte, n int) []float32 {
	if n == 0 {
		return nil
	}
	_ = b[4*n-1]
	return unsafe.Slice(f32p(b), n)
}

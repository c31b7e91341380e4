//go:build !purego

package kernels

import (
	"github.com/llqt/llqt/formats/block"
	"github.com/llqt/llqt/formats/ggml"
	"golang.org/x/sys/cpu"
)

// hasAVX2 reports whether the assembly kernels are in use: they need AVX2 and
// FMA, and F16C for the half-precision scales and conversions.
var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C

// hasVNNI reports whether the four-row Q8_0-family kernels can use
// AVX512-VNNI's vpdpbusd on ymm registers (it needs AVX512-VL for those).
var hasVNNI = hasAVX2 && cpu.X86.HasAVX512VNNI && cpu.X86.HasAVX512VL

// hasZMM reports whether the AVX-512 set can also use the zmm wide panels
// (vpdpbusd on zmm, and AVX512-BW's byte shifts and shuffles). x/sys/cpu
// reports AVX512F only where the OS saves the zmm state.
var hasZMM = hasVNNI && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW

func init() {
	install(availableSets()[0])
	active = availableSets()[0]
}

// availableSets lists the kernel sets this CPU can run, fastest first.
func availableSets() []string {
	switch {
	case hasAMX:
		return []string{SetAMX, SetAVX512, SetAVX2, SetPureGo}
	case hasVNNI:
		return []string{SetAVX512, SetAVX2, SetPureGo}
	case hasAVX2:
		return []string{SetAVX2, SetPureGo}
	}
	return []string{SetPureGo}
}

// The assembly kernels' signatures: x is the weight row (rows at x +
// r*xstride for tiles and panels), y the converted activations, nb the
// number of blocks (of elements, for the plain types).
type (
	asmDot   func(x, y *byte, nb int) float32
	asmRows  func(x, y *byte, nb, rows int, out *float32)
	asmDot4  func(x, y *byte, ystride, nb int, out *float32, outstride int)
	asmTile  func(x *byte, xstride int, y *byte, ystride, nb int, out *float32, outstride int)
	asmRows4 func(x *byte, xstride int, y *byte, ystride, n, rows int, out *float32, outstride int)
	asmPanel func(x *byte, xstride int, p *byte, nb int, out *float32, outstride int)
	asmWide  func(x *byte, xstride int, p *byte, pstride, nb int, out *float32, outstride int)
)

// widePanels are the wide panel kernels (two weight rows times four or two
// panels), widest first: the zmm ones of the AVX-512 set, used where the CPU
// has them (hasZMM), and the AVX2 set's. On a 5th-gen Xeon (model 207) the
// four-panel zmm Q4_0 kernel ran at up to 325 GOP/s in BenchmarkShapes, the
// two-panel one 254 and the ymm VNNI panel 178; the AVX2 two-panel Q4_0
// kernel (its ymm panel sums whole runs in int16, so only the weight
// unpacking is left to share) 132-143 against the AVX2 panel's 112-117.
var widePanels = []struct {
	typ     ggml.Type
	zmm     bool // the AVX-512 set's (with hasZMM); else the AVX2 set's
	panels  []int
	kernels []asmWide
}{
	{ggml.TypeQ4_0, true, []int{4, 2}, []asmWide{panelQ4_0Q8_0x2x64ZMM, panelQ4_0Q8_0x2x32ZMM}},
	{ggml.TypeQ8_0, true, []int{4, 2}, []asmWide{panelQ8_0Q8_0x2x64ZMM, panelQ8_0Q8_0x2x32ZMM}},
	{ggml.TypeIQ4_NL, true, []int{4, 2}, []asmWide{panelIQ4NLQ8_0x2x64ZMM, panelIQ4NLQ8_0x2x32ZMM}},
	{ggml.TypeQ4_K, true, []int{4, 2}, []asmWide{panelQ4_KQ8_Kx2x64ZMM, panelQ4_KQ8_Kx2x32ZMM}},
	{ggml.TypeQ5_K, true, []int{4, 2}, []asmWide{panelQ5_KQ8_Kx2x64ZMM, panelQ5_KQ8_Kx2x32ZMM}},
	{ggml.TypeQ6_K, true, []int{4, 2}, []asmWide{panelQ6_KQ8_Kx2x64ZMM, panelQ6_KQ8_Kx2x32ZMM}},
	{ggml.TypeIQ4_XS, true, []int{4, 2}, []asmWide{panelIQ4XSQ8_Kx2x64ZMM, panelIQ4XSQ8_Kx2x32ZMM}},
	{ggml.TypeQ4_0, false, []int{2}, []asmWide{panelQ4_0Q8_0x2x32AVX2}},
}

// zmmRows are the many-rows (decode) kernels of the AVX-512 set that also
// need the zmm registers (hasZMM), in place of the ymm VNNI ones.
var zmmRows = []struct {
	typ ggml.Type
	k   asmRows
}{
	{ggml.TypeQ4_0, dotQ4_0Q8_0RowsZMM},
}

// quadPanels are the AVX-512 set's four-row wide panels (four weight rows
// times four panels), used with the wide ones where the CPU has zmm
// (hasZMM). On a Zen 5 EPYC (family 26 model 2, one thread) the two-row
// kernels were bounded by their loads, six for eight vpdpbusd; see
// genPanelZ4 for the figures.
var quadPanels = []struct {
	typ ggml.Type
	k   asmWide
}{
	{ggml.TypeQ4_0, panelQ4_0Q8_0x4x64ZMM},
	{ggml.TypeQ8_0, panelQ8_0Q8_0x4x64ZMM},
	{ggml.TypeIQ4_NL, panelIQ4NLQ8_0x4x64ZMM},
}

// floatRows4 are the plain types' many-rows four-activation kernels (see
// rows4Func), used by both sets.
var floatRows4 = []struct {
	typ ggml.Type
	k   asmRows4
}{
	{ggml.TypeF32, matF32x4RowsAVX2},
	{ggml.TypeF16, matF16x4RowsAVX2},
	{ggml.TypeBF16, matBF16x4RowsAVX2},
}

// wordPanels are the AVX2 set's word panels (see wordPanelBlock), for
// weights whose quants are signed bytes, where a byte panel needs sign
// fix-ups. On a 5th-gen Xeon (model 207), one thread, a K=5632 Q8_0 panel
// ran at 112 GOP/s against the byte panel's 90; llqt bench pp512 --kernels
// avx2 at 2 threads (alternated, three rounds) went from 62-70 to 73-83 t/s
// for the 1.1B-shape Q8_0 and from 62-70 to 80-89 for IQ4_XS, whose word
// panel (BenchmarkShapes 129 GOP/s) replaced the 4×4 tile (74-84).
var wordPanels = []struct {
	typ   ggml.Type
	panel asmPanel
	widen func(dst, src *byte, nb int)
}{
	{ggml.TypeQ8_0, panelWords32AVX2, widenQ8_0AVX2},
	{ggml.TypeIQ4_NL, panelWords32AVX2, widenIQ4NLAVX2},
	{ggml.TypeIQ4_XS, panelWords256AVX2, widenIQ4XSAVX2},
}

// wordWiden wraps a widening kernel (srcBytes and dstBytes per block).
func wordWiden(k func(dst, src *byte, nb int), srcBytes, dstBytes int) func(dst, row []byte, nb int) {
	return func(dst, row []byte, nb int) {
		if nb > 0 {
			_, _ = dst[nb*dstBytes-1], row[nb*srcBytes-1]
			k(&dst[0], &row[0], nb)
		}
	}
}

// asmKernels has a row per weight type with its assembly kernels: the AVX2
// set's (dot, many rows, four rows, 4×4 tile, 2×16 panel), then the ones the
// AVX512-VNNI set puts in their place or adds (its integer dots are one
// vpdpbusd instead of vpmaddubsw+vpmaddwd, with the same bits; prompt
// batches spend most of their time in the tiles and panels). nil: the set
// has no kernel of that shape for the type (the AVX2 panels of Q8_0, IQ4_NL
// and IQ4_XS are word panels, installed from wordPanels). The wrappers take
// the block sizes from the type and its activation format, and check the
// slice bounds once so that the assembly never reads past them.
var asmKernels = []struct {
	typ       ggml.Type
	dot       asmDot
	rows      asmRows
	dot4      asmDot4
	tile      asmTile
	panel     asmPanel
	rowsVNNI  asmRows
	dot4VNNI  asmDot4
	tileVNNI  asmTile
	panelVNNI asmPanel
}{
	{ggml.TypeF32, matF32AVX2, nil, matF32x4AVX2, nil, nil, nil, nil, nil, nil},
	{ggml.TypeF16, matF16AVX2, nil, matF16x4AVX2, nil, nil, nil, nil, nil, nil},
	{ggml.TypeBF16, matBF16AVX2, nil, matBF16x4AVX2, nil, nil, nil, nil, nil, nil},
	{ggml.TypeQ4_0, dotQ4_0Q8_0AVX2, dotQ4_0Q8_0RowsAVX2, dotQ4_0Q8_0x4AVX2, tileQ4_0Q8_0x4x4AVX2, panelQ4_0Q8_0x2x16AVX2, dotQ4_0Q8_0RowsVNNI, dotQ4_0Q8_0x4VNNI, tileQ4_0Q8_0x4x4VNNI, panelQ4_0Q8_0x2x16VNNI},
	{ggml.TypeQ4_1, dotQ4_1Q8_1AVX2, nil, dotQ4_1Q8_1x4AVX2, nil, nil, nil, nil, nil, nil},
	{ggml.TypeQ5_0, dotQ5_0Q8_0AVX2, dotQ5_0Q8_0RowsAVX2, dotQ5_0Q8_0x4AVX2, tileQ5_0Q8_0x4x4AVX2, nil, dotQ5_0Q8_0RowsVNNI, dotQ5_0Q8_0x4VNNI, tileQ5_0Q8_0x4x4VNNI, nil},
	{ggml.TypeQ5_1, dotQ5_1Q8_1AVX2, nil, dotQ5_1Q8_1x4AVX2, nil, nil, nil, nil, nil, nil},
	{ggml.TypeQ8_0, dotQ8_0Q8_0AVX2, dotQ8_0Q8_0RowsAVX2, dotQ8_0Q8_0x4AVX2, tileQ8_0Q8_0x4x4AVX2, nil, dotQ8_0Q8_0RowsVNNI, dotQ8_0Q8_0x4VNNI, tileQ8_0Q8_0x4x4VNNI, panelQ8_0Q8_0x2x16VNNI},
	{ggml.TypeIQ4_NL, dotIQ4NLQ8_0AVX2, dotIQ4NLQ8_0RowsAVX2, dotIQ4NLQ8_0x4AVX2, tileIQ4NLQ8_0x4x4AVX2, nil, dotIQ4NLQ8_0RowsVNNI, dotIQ4NLQ8_0x4VNNI, tileIQ4NLQ8_0x4x4VNNI, panelIQ4NLQ8_0x2x16VNNI},
	{ggml.TypeQ2_K, dotQ2_KQ8_KAVX2, nil, dotQ2_KQ8_Kx4AVX2, nil, nil, nil, nil, nil, nil},
	{ggml.TypeQ3_K, dotQ3_KQ8_KAVX2, nil, dotQ3_KQ8_Kx4AVX2, nil, nil, nil, nil, nil, nil},
	{ggml.TypeQ4_K, dotQ4_KQ8_KAVX2, dotQ4_KQ8_KRowsAVX2, dotQ4_KQ8_Kx4AVX2, nil, panelQ4_KQ8_Kx2x16AVX2, nil, nil, nil, panelQ4_KQ8_Kx2x16VNNI},
	{ggml.TypeQ5_K, dotQ5_KQ8_KAVX2, dotQ5_KQ8_KRowsAVX2, dotQ5_KQ8_Kx4AVX2, nil, panelQ5_KQ8_Kx2x16AVX2, nil, nil, nil, panelQ5_KQ8_Kx2x16VNNI},
	{ggml.TypeQ6_K, dotQ6_KQ8_KAVX2, dotQ6_KQ8_KRowsAVX2, dotQ6_KQ8_Kx4AVX2, nil, panelQ6_KQ8_Kx2x16AVX2, nil, nil, nil, panelQ6_KQ8_Kx2x16VNNI},
	{ggml.TypeTQ1_0, dotTQ1_0Q8_KAVX2, dotTQ1_0Q8_KRowsAVX2, dotTQ1_0Q8_Kx4AVX2, nil, nil, nil, nil, nil, nil},
	{ggml.TypeTQ2_0, dotTQ2_0Q8_KAVX2, dotTQ2_0Q8_KRowsAVX2, dotTQ2_0Q8_Kx4AVX2, nil, nil, nil, nil, nil, nil},
	{ggml.TypeIQ1_S, dotIQ1_SQ8_KAVX2, dotIQ1_SQ8_KRowsAVX2, dotIQ1_SQ8_Kx4AVX2, nil, nil, nil, nil, nil, nil},
	{ggml.TypeIQ1_M, dotIQ1_MQ8_KAVX2, dotIQ1_MQ8_KRowsAVX2, dotIQ1_MQ8_Kx4AVX2, nil, nil, nil, nil, nil, nil},
	{ggml.TypeIQ4_XS, dotIQ4XSQ8_KAVX2, dotIQ4XSQ8_KRowsAVX2, dotIQ4XSQ8_Kx4AVX2, tileIQ4XSQ8_Kx4x4AVX2, nil, nil, nil, nil, panelIQ4XSQ8_Kx2x16VNNI},
	{ggml.TypeIQ2_XXS, dotIQ2XXSQ8_KAVX2, dotIQ2XXSQ8_KRowsAVX2, dotIQ2XXSQ8_Kx4AVX2, nil, nil, nil, nil, nil, nil},
	{ggml.TypeIQ2_XS, dotIQ2XSQ8_KAVX2, dotIQ2XSQ8_KRowsAVX2, dotIQ2XSQ8_Kx4AVX2, nil, nil, nil, nil, nil, nil},
	{ggml.TypeIQ2_S, dotIQ2SQ8_KAVX2, dotIQ2SQ8_KRowsAVX2, dotIQ2SQ8_Kx4AVX2, nil, nil, nil, nil, nil, nil},
	{ggml.TypeIQ3_XXS, dotIQ3XXSQ8_KAVX2, dotIQ3XXSQ8_KRowsAVX2, dotIQ3XXSQ8_Kx4AVX2, nil, nil, nil, nil, nil, nil},
	{ggml.TypeIQ3_S, dotIQ3SQ8_KAVX2, dotIQ3SQ8_KRowsAVX2, dotIQ3SQ8_Kx4AVX2, nil, nil, nil, nil, nil, nil},
}

// install puts the named (available) set in place over the Go reference.
func install(set string) {
	useGo()
	if set != SetAVX2 && set != SetAVX512 && set != SetAMX {
		return
	}
	vnni := set != SetAVX2
	for _, a := range asmKernels {
		k := installed[a.typ]
		per, wBytes, aBytes := a.typ.BlockSize(), a.typ.TypeSize(), k.act.blockBytes()
		if per == 1 { // plain weights: no division by the block size
			k.dot, k.dot4 = floatDot(a.dot, wBytes), floatDot4(a.dot4, wBytes)
		} else {
			k.dot, k.dot4 = blockDot(a.dot, per, wBytes, aBytes), blockDot4(a.dot4, per, wBytes, aBytes)
		}
		if a.rows != nil {
			k.rows = blockRows(a.rows, per, wBytes, aBytes)
		}
		if a.tile != nil {
			k.tile = blockTile(a.tile, per, wBytes, aBytes)
		}
		if a.panel != nil {
			k.panel = blockPanel(a.panel, per, wBytes, k.act.panelBlockBytes())
		}
		if vnni && a.rowsVNNI != nil {
			k.rows = blockRows(a.rowsVNNI, per, wBytes, aBytes)
		}
		if vnni && a.dot4VNNI != nil {
			k.dot4 = blockDot4(a.dot4VNNI, per, wBytes, aBytes)
		}
		if vnni && a.tileVNNI != nil {
			k.tile = blockTile(a.tileVNNI, per, wBytes, aBytes)
		}
		if vnni && a.panelVNNI != nil {
			k.panel = blockPanel(a.panelVNNI, per, wBytes, k.act.panelBlockBytes())
		}
	}
	for _, f := range floatRows4 {
		installed[f.typ].rows4 = floatRows(f.k, f.typ.TypeSize())
	}
	for _, w := range wordPanels {
		if vnni { // the AVX2 set's only
			continue
		}
		k := installed[w.typ]
		per, wBytes := w.typ.BlockSize(), 4+2*w.typ.BlockSize() // float32 scale, int16 quants
		k.panel = blockPanel(w.panel, per, wBytes, wordPanelBlock(per))
		k.words = &wordForm{per: per, bytes: wBytes, widen: wordWiden(w.widen, w.typ.TypeSize(), wBytes)}
	}
	for _, w := range widePanels {
		if w.zmm != vnni || (w.zmm && !hasZMM) {
			continue
		}
		k := installed[w.typ]
		for i, f := range w.kernels {
			k.wide = append(k.wide, blockWide(f, 2, w.panels[i], w.typ.BlockSize(), w.typ.TypeSize(), k.act.panelBlockBytes()))
		}
	}
	if vnni && hasZMM {
		for _, z := range zmmRows {
			k := installed[z.typ]
			k.rows = blockRows(z.k, z.typ.BlockSize(), z.typ.TypeSize(), k.act.blockBytes())
		}
		for _, q := range quadPanels {
			k := installed[q.typ]
			k.quad = blockWide(q.k, 4, 4, q.typ.BlockSize(), q.typ.TypeSize(), k.act.panelBlockBytes())
		}
	}
	if set == SetAMX {
		installAMX()
	}
	useAsmVectors()
}

// useAsmVectors installs the assembly vector kernels and activation
// quantizers.
func useAsmVectors() {
	quantizeRowQ8_0 = func(dst []byte, x []float32) {
		if nb := len(x) / block.QK; nb > 0 {
			_ = dst[nb*block.Q8_0Bytes-1]
			quantizeQ8_0AVX2(&dst[0], &x[0], nb)
		}
	}
	quantizeRowQ8_1 = func(dst []byte, x []float32) {
		if nb := len(x) / block.QK; nb > 0 {
			_ = dst[nb*block.Q8_1Bytes-1]
			quantizeQ8_1AVX2(&dst[0], &x[0], nb)
		}
	}
	quantizeRowQ8_K = func(dst []byte, x []float32) {
		if nb := len(x) / block.QK_K; nb > 0 {
			_ = dst[nb*block.Q8_KBytes-1]
			quantizeQ8_KAVX2(&dst[0], &x[0], nb)
		}
	}

	dotF32Impl = func(a, b []float32) float32 {
		if len(a) == 0 {
			return 0
		}
		return dotF32AVX2(&a[0], &b[0], len(a))
	}
	dotF16F32Impl = func(a []byte, b []float32) float32 {
		if len(b) == 0 {
			return 0
		}
		return dotF16F32AVX2(&a[0], &b[0], len(b))
	}
	axpyF16Impl = func(y []float32, alpha float32, x []byte) {
		if len(y) > 0 {
			axpyF16AVX2(&y[0], alpha, &x[0], len(y))
		}
	}
	siluMulImpl = func(g, u []float32) {
		for len(g) >= 4 {
			done := siluMulAVX2(&g[0], &u[0], len(g)&^3)
			// The kernel stops before a group where math.Exp would branch
			// (|x| > 700 or NaN); that group goes through Go.
			g, u = g[done:], u[done:]
			k := min(4, len(g))
			siluMulGo(g[:k], u[:k])
			g, u = g[k:], u[k:]
		}
		siluMulGo(g, u)
	}
	expShiftedImpl = func(x []float32, shift float32) {
		if n := len(x) &^ 7; n > 0 {
			expShiftedAVX2(&x[0], n, shift)
		}
		expShiftedGo(x[len(x)&^7:], shift)
	}
	weightedSumF16Impl = func(out, w []float32, v []byte) {
		if len(out) == 0 {
			return
		}
		if len(w) == 0 {
			clear(out)
			return
		}
		weightedSumF16AVX2(&out[0], &w[0], &v[0], len(w), len(out))
	}
	f16ToF32Impl = func(dst []float32, src []byte) {
		if len(dst) > 0 {
			f16ToF32AVX2(&dst[0], &src[0], len(dst))
		}
	}
	f32ToF16Impl = func(dst []byte, src []float32) {
		if len(src) > 0 {
			f32ToF16AVX2(&dst[0], &src[0], len(src))
		}
	}
	roundF16Impl = func(dst, src []float32) {
		if len(src) > 0 {
			_ = dst[len(src)-1]
			roundF16AVX2(&dst[0], &src[0], len(src))
		}
	}
	roundBF16Impl = func(dst, src []float32) {
		if len(src) > 0 {
			_ = dst[len(src)-1]
			roundBF16AVX2(&dst[0], &src[0], len(src))
		}
	}
	bf16ToF32Impl = func(dst []float32, src []byte) {
		if len(dst) > 0 {
			bf16ToF32AVX2(&dst[0], &src[0], len(dst))
		}
	}
}

// blockDot wraps an assembly block dot as a dotFunc for n elements in blocks
// of per elements, wBytes and aBytes per block.
func blockDot(k func(x, y *byte, nb int) float32, per, wBytes, aBytes int) dotFunc {
	return func(w, a []byte, n int) float32 {
		nb := n / per
		if nb == 0 {
			return 0
		}
		_, _ = w[nb*wBytes-1], a[nb*aBytes-1]
		return k(&w[0], &a[0], nb)
	}
}

// blockRows wraps a many-rows assembly block dot as a rowsFunc.
func blockRows(k func(x, y *byte, nb, rows int, out *float32), per, wBytes, aBytes int) rowsFunc {
	return func(w, a []byte, n, rows int, out []float32) {
		if rows <= 0 {
			return
		}
		nb := n / per
		if nb == 0 {
			clear(out[:rows])
			return
		}
		_, _, _ = w[rows*nb*wBytes-1], a[nb*aBytes-1], out[rows-1]
		k(&w[0], &a[0], nb, rows, &out[0])
	}
}

// blockDot4 wraps a four-row assembly block dot as a dot4Func.
func blockDot4(k func(x, y *byte, ystride, nb int, out *float32, outstride int), per, wBytes, aBytes int) dot4Func {
	return func(w, a []byte, astride, n int, out []float32, outstride int) {
		nb := n / per
		if nb == 0 {
			for c := 0; c < 4; c++ {
				out[c*outstride] = 0
			}
			return
		}
		_, _, _ = w[nb*wBytes-1], a[3*astride+nb*aBytes-1], out[3*outstride]
		k(&w[0], &a[0], astride, nb, &out[0], outstride)
	}
}

// blockTile wraps a 4×4 tile assembly block dot as a tileFunc.
func blockTile(k func(x *byte, xstride int, y *byte, ystride, nb int, out *float32, outstride int), per, wBytes, aBytes int) tileFunc {
	return func(w []byte, wstride int, a []byte, astride, n int, out []float32, outstride int) {
		nb := n / per
		if nb == 0 {
			for c := 0; c < 4; c++ {
				clear(out[c*outstride : c*outstride+4])
			}
			return
		}
		_, _, _ = w[3*wstride+nb*wBytes-1], a[3*astride+nb*aBytes-1], out[3*outstride+3]
		k(&w[0], wstride, &a[0], astride, nb, &out[0], outstride)
	}
}

// blockPanel wraps a panel assembly kernel (weight blocks of per quants,
// wBytes each, against a panel of pBytes per block) as a panelFunc.
func blockPanel(k func(x *byte, xstride int, p *byte, nb int, out *float32, outstride int), per, wBytes, pBytes int) panelFunc {
	return func(w []byte, wstride int, panel []byte, n int, out []float32, outstride int) {
		nb := n / per
		if nb == 0 {
			for c := range panelRows {
				out[c*outstride], out[c*outstride+1] = 0, 0
			}
			return
		}
		_, _, _ = w[wstride+nb*wBytes-1], panel[nb*pBytes-1], out[(panelRows-1)*outstride+1]
		k(&w[0], wstride, &panel[0], nb, &out[0], outstride)
	}
}

// blockWide wraps a wide-panel assembly kernel, rows weight rows (two or
// four) times np panels of pBytes bytes a block, as blockPanel does a panel
// kernel.
func blockWide(k asmWide, rows, np, per, wBytes, pBytes int) widePanel {
	return widePanel{panels: np, f: func(w []byte, wstride int, panels []byte, pstride, n int, out []float32, outstride int) {
		nb := n / per
		if nb == 0 {
			for c := range np * panelRows {
				clear(out[c*outstride : c*outstride+rows])
			}
			return
		}
		_, _, _ = w[(rows-1)*wstride+nb*wBytes-1], panels[(np-1)*pstride+nb*pBytes-1], out[(np*panelRows-1)*outstride+rows-1]
		k(&w[0], wstride, &panels[0], pstride, nb, &out[0], outstride)
	}}
}

// floatDot wraps a plain-weight assembly dot (size bytes per weight, float32
// activations) as a dotFunc.
func floatDot(k func(x, y *byte, n int) float32, size int) dotFunc {
	return func(w, a []byte, n int) float32 {
		if n == 0 {
			return 0
		}
		_, _ = w[n*size-1], a[4*n-1]
		return k(&w[0], &a[0], n)
	}
}

// floatRows wraps a plain-weight many-rows four-activation kernel as a
// rows4Func.
func floatRows(k asmRows4, size int) rows4Func {
	return func(w []byte, wstride int, a []byte, astride, n, rows int, out []float32, outstride int) {
		if rows <= 0 {
			return
		}
		if n == 0 {
			for r := range rows {
				for c := range 4 {
					out[r+c*outstride] = 0
				}
			}
			return
		}
		_, _, _ = w[(rows-1)*wstride+n*size-1], a[3*astride+4*n-1], out[rows-1+3*outstride]
		k(&w[0], wstride, &a[0], astride, n, rows, &out[0], outstride)
	}
}

// floatDot4 wraps a four-row plain-weight assembly dot as a dot4Func.
func floatDot4(k func(x, y *byte, ystride, n int, out *float32, outstride int), size int) dot4Func {
	return func(w, a []byte, astride, n int, out []float32, outstride int) {
		if n == 0 {
			for c := 0; c < 4; c++ {
				out[c*outstride] = 0
			}
			return
		}
		_, _, _ = w[n*size-1], a[3*astride+4*n-1], out[3*outstride]
		k(&w[0], &a[0], astride, n, &out[0], outstride)
	}
}

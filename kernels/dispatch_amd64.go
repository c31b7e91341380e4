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

func init() {
	install(availableSets()[0])
	active = availableSets()[0]
}

// availableSets lists the kernel sets this CPU can run, fastest first.
func availableSets() []string {
	switch {
	case hasVNNI:
		return []string{SetAVX512, SetAVX2, SetPureGo}
	case hasAVX2:
		return []string{SetAVX2, SetPureGo}
	}
	return []string{SetPureGo}
}

// install puts the named (available) set in place over the Go reference.
func install(set string) {
	useGo()
	if set == SetAVX2 || set == SetAVX512 {
		useAsm()
	}
	if set == SetAVX512 {
		useVNNI()
	}
}

// useVNNI installs the four-row and tile kernels whose integer dots are one
// vpdpbusd instead of vpmaddubsw+vpmaddwd (the same bits as the AVX2 ones),
// and the panel kernels (Q8_0, Q4_0, IQ4_NL), which have no AVX2
// counterpart. Prompt batches spend most of their time in them.
func useVNNI() {
	dot4For[ggml.TypeQ8_0] = blockDot4(dotQ8_0Q8_0x4VNNI, 32, 34, block.Q8_0Bytes)
	dot4For[ggml.TypeQ4_0] = blockDot4(dotQ4_0Q8_0x4VNNI, 32, 18, block.Q8_0Bytes)
	dot4For[ggml.TypeQ5_0] = blockDot4(dotQ5_0Q8_0x4VNNI, 32, 22, block.Q8_0Bytes)
	dot4For[ggml.TypeIQ4_NL] = blockDot4(dotIQ4NLQ8_0x4VNNI, 32, 18, block.Q8_0Bytes)
	tileFor[ggml.TypeQ8_0] = blockTile(tileQ8_0Q8_0x4x4VNNI, 32, 34, block.Q8_0Bytes)
	panelFor[ggml.TypeQ8_0] = blockPanel(panelQ8_0Q8_0x2x16VNNI, 34)
	panelFor[ggml.TypeQ4_0] = blockPanel(panelQ4_0Q8_0x2x16VNNI, 18)
	panelFor[ggml.TypeIQ4_NL] = blockPanel(panelIQ4NLQ8_0x2x16VNNI, 18)
	tileFor[ggml.TypeQ4_0] = blockTile(tileQ4_0Q8_0x4x4VNNI, 32, 18, block.Q8_0Bytes)
	tileFor[ggml.TypeQ5_0] = blockTile(tileQ5_0Q8_0x4x4VNNI, 32, 22, block.Q8_0Bytes)
	tileFor[ggml.TypeIQ4_NL] = blockTile(tileIQ4NLQ8_0x4x4VNNI, 32, 18, block.Q8_0Bytes)
}

// useAsm installs the assembly kernels. The wrappers check the slice bounds
// once so the assembly never reads past them.
func useAsm() {
	dotF32Bytes = floatDot(matF32AVX2, 4)
	dotF16Act = floatDot(matF16AVX2, 2)
	dotBF16Act = floatDot(matBF16AVX2, 2)
	dot4For[ggml.TypeF32] = floatDot4(matF32x4AVX2, 4)
	dot4For[ggml.TypeF16] = floatDot4(matF16x4AVX2, 2)
	dot4For[ggml.TypeBF16] = floatDot4(matBF16x4AVX2, 2)
	dotQ8_0Q8_0 = blockDot(dotQ8_0Q8_0AVX2, 32, 34, block.Q8_0Bytes)
	dotQ4_0Q8_0 = blockDot(dotQ4_0Q8_0AVX2, 32, 18, block.Q8_0Bytes)
	dotQ4_KQ8_K = blockDot(dotQ4_KQ8_KAVX2, block.QK_K, 144, block.Q8_KBytes)
	dotQ5_KQ8_K = blockDot(dotQ5_KQ8_KAVX2, block.QK_K, 176, block.Q8_KBytes)
	dotQ6_KQ8_K = blockDot(dotQ6_KQ8_KAVX2, block.QK_K, 210, block.Q8_KBytes)
	dot4For[ggml.TypeQ8_0] = blockDot4(dotQ8_0Q8_0x4AVX2, 32, 34, block.Q8_0Bytes)
	tileFor[ggml.TypeQ8_0] = blockTile(tileQ8_0Q8_0x4x4AVX2, 32, 34, block.Q8_0Bytes)
	tileFor[ggml.TypeQ4_0] = blockTile(tileQ4_0Q8_0x4x4AVX2, 32, 18, block.Q8_0Bytes)
	tileFor[ggml.TypeQ5_0] = blockTile(tileQ5_0Q8_0x4x4AVX2, 32, 22, block.Q8_0Bytes)
	tileFor[ggml.TypeIQ4_NL] = blockTile(tileIQ4NLQ8_0x4x4AVX2, 32, 18, block.Q8_0Bytes)
	dot4For[ggml.TypeQ4_0] = blockDot4(dotQ4_0Q8_0x4AVX2, 32, 18, block.Q8_0Bytes)
	dot4For[ggml.TypeQ4_K] = blockDot4(dotQ4_KQ8_Kx4AVX2, block.QK_K, 144, block.Q8_KBytes)
	dot4For[ggml.TypeQ5_K] = blockDot4(dotQ5_KQ8_Kx4AVX2, block.QK_K, 176, block.Q8_KBytes)
	dot4For[ggml.TypeQ6_K] = blockDot4(dotQ6_KQ8_Kx4AVX2, block.QK_K, 210, block.Q8_KBytes)
	dot4For[ggml.TypeQ5_0] = blockDot4(dotQ5_0Q8_0x4AVX2, 32, 22, block.Q8_0Bytes)
	dot4For[ggml.TypeIQ4_NL] = blockDot4(dotIQ4NLQ8_0x4AVX2, 32, 18, block.Q8_0Bytes)
	dot4For[ggml.TypeQ4_1] = blockDot4(dotQ4_1Q8_1x4AVX2, 32, 20, block.Q8_1Bytes)
	dot4For[ggml.TypeQ5_1] = blockDot4(dotQ5_1Q8_1x4AVX2, 32, 24, block.Q8_1Bytes)
	dot4For[ggml.TypeQ2_K] = blockDot4(dotQ2_KQ8_Kx4AVX2, block.QK_K, 84, block.Q8_KBytes)
	dot4For[ggml.TypeQ3_K] = blockDot4(dotQ3_KQ8_Kx4AVX2, block.QK_K, 110, block.Q8_KBytes)
	dot4For[ggml.TypeIQ4_XS] = blockDot4(dotIQ4XSQ8_Kx4AVX2, block.QK_K, 136, block.Q8_KBytes)
	dotQ5_0Q8_0 = blockDot(dotQ5_0Q8_0AVX2, 32, 22, block.Q8_0Bytes)
	dotQ4_1Q8_1 = blockDot(dotQ4_1Q8_1AVX2, 32, 20, block.Q8_1Bytes)
	dotQ5_1Q8_1 = blockDot(dotQ5_1Q8_1AVX2, 32, 24, block.Q8_1Bytes)
	dotIQ4NLQ8_0 = blockDot(dotIQ4NLQ8_0AVX2, 32, 18, block.Q8_0Bytes)
	dotIQ4XSQ8_K = blockDot(dotIQ4XSQ8_KAVX2, block.QK_K, 136, block.Q8_KBytes)
	dotQ2_KQ8_K = blockDot(dotQ2_KQ8_KAVX2, block.QK_K, 84, block.Q8_KBytes)
	dotQ3_KQ8_K = blockDot(dotQ3_KQ8_KAVX2, block.QK_K, 110, block.Q8_KBytes)

	rowsFor[ggml.TypeQ8_0] = blockRows(dotQ8_0Q8_0RowsAVX2, 32, 34, block.Q8_0Bytes)
	rowsFor[ggml.TypeQ4_0] = blockRows(dotQ4_0Q8_0RowsAVX2, 32, 18, block.Q8_0Bytes)
	rowsFor[ggml.TypeQ5_0] = blockRows(dotQ5_0Q8_0RowsAVX2, 32, 22, block.Q8_0Bytes)
	rowsFor[ggml.TypeIQ4_NL] = blockRows(dotIQ4NLQ8_0RowsAVX2, 32, 18, block.Q8_0Bytes)
	rowsFor[ggml.TypeQ4_K] = blockRows(dotQ4_KQ8_KRowsAVX2, block.QK_K, 144, block.Q8_KBytes)
	rowsFor[ggml.TypeQ5_K] = blockRows(dotQ5_KQ8_KRowsAVX2, block.QK_K, 176, block.Q8_KBytes)
	rowsFor[ggml.TypeQ6_K] = blockRows(dotQ6_KQ8_KRowsAVX2, block.QK_K, 210, block.Q8_KBytes)

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

// blockPanel wraps a panel assembly kernel (weight blocks of 32 quants,
// wBytes each) as a panelFunc.
func blockPanel(k func(x *byte, xstride int, p *byte, nb int, out *float32, outstride int), wBytes int) panelFunc {
	return func(w []byte, wstride int, panel []byte, n int, out []float32, outstride int) {
		nb := n / block.QK
		if nb == 0 {
			for c := range panelRows {
				out[c*outstride], out[c*outstride+1] = 0, 0
			}
			return
		}
		_, _, _ = w[wstride+nb*wBytes-1], panel[nb*panelBlock-1], out[(panelRows-1)*outstride+1]
		k(&w[0], wstride, &panel[0], nb, &out[0], outstride)
	}
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

//go:build !purego

package kernels

import "golang.org/x/sys/cpu"

// hasAVX2 reports whether the assembly kernels are in use: they need AVX2 and
// FMA, and F16C for the half-precision scales and conversions.
var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C

func init() {
	if hasAVX2 {
		useAsm()
	}
}

// useAsm installs the assembly kernels. The wrappers check the slice bounds
// once so the assembly never reads past them.
func useAsm() {
	dotF32Bytes = func(w, a []byte, n int) float32 {
		if n == 0 {
			return 0
		}
		_, _ = w[4*n-1], a[4*n-1]
		return dotF32AVX2(f32p(w), f32p(a), n)
	}
	dotF16F16 = func(w, a []byte, n int) float32 {
		if n == 0 {
			return 0
		}
		_, _ = w[2*n-1], a[2*n-1]
		return dotF16F16AVX2(&w[0], &a[0], n)
	}
	dotBF16BF16 = func(w, a []byte, n int) float32 {
		if n == 0 {
			return 0
		}
		_, _ = w[2*n-1], a[2*n-1]
		return dotBF16BF16AVX2(&w[0], &a[0], n)
	}
	dotQ8_0Q8_0 = blockDot(dotQ8_0Q8_0AVX2, 32, 34, q8_0Len)
	dotQ4_0Q8_0 = blockDot(dotQ4_0Q8_0AVX2, 32, 18, q8_0Len)
	dotQ4_KQ8_K = blockDot(dotQ4_KQ8_KAVX2, qkK, 144, q8KLen)
	dotQ5_KQ8_K = blockDot(dotQ5_KQ8_KAVX2, qkK, 176, q8KLen)
	dotQ6_KQ8_K = blockDot(dotQ6_KQ8_KAVX2, qkK, 210, q8KLen)
	dotQ5_0Q8_0 = blockDot(dotQ5_0Q8_0AVX2, 32, 22, q8_0Len)
	dotQ4_1Q8_1 = blockDot(dotQ4_1Q8_1AVX2, 32, 20, q8_1Len)
	dotQ5_1Q8_1 = blockDot(dotQ5_1Q8_1AVX2, 32, 24, q8_1Len)
	dotIQ4NLQ8_0 = blockDot(dotIQ4NLQ8_0AVX2, 32, 18, q8_0Len)
	dotIQ4XSQ8_K = blockDot(dotIQ4XSQ8_KAVX2, qkK, 136, q8KLen)
	dotQ2_KQ8_K = blockDot(dotQ2_KQ8_KAVX2, qkK, 84, q8KLen)
	dotQ3_KQ8_K = blockDot(dotQ3_KQ8_KAVX2, qkK, 110, q8KLen)

	quantizeRowQ8_0 = func(dst []byte, x []float32) {
		if nb := len(x) / qk8; nb > 0 {
			_ = dst[nb*q8_0Len-1]
			quantizeQ8_0AVX2(&dst[0], &x[0], nb)
		}
	}
	quantizeRowQ8_1 = func(dst []byte, x []float32) {
		if nb := len(x) / qk8; nb > 0 {
			_ = dst[nb*q8_1Len-1]
			quantizeQ8_1AVX2(&dst[0], &x[0], nb)
		}
	}
	quantizeRowQ8_K = func(dst []byte, x []float32) {
		if nb := len(x) / qkK; nb > 0 {
			_ = dst[nb*q8KLen-1]
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
	f32ToBF16Impl = func(dst []byte, src []float32) {
		if len(src) > 0 {
			f32ToBF16AVX2(&dst[0], &src[0], len(src))
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

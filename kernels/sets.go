package kernels

import (
	"fmt"
	"strings"
)

// Kernel sets: the instruction-set paths a machine can run. One AVX-512
// machine can then report the speed of the AVX2 path that AVX2-only CPUs take,
// and of the pure-Go reference.
const (
	SetAMX    = "amx"         // the AVX-512 set plus AMX tile kernels for the prompt batches of the Q8_0 family
	SetAVX512 = "avx512-vnni" // the AVX2 kernels plus the AVX512-VNNI dots, tiles and panels (zmm wide panels with AVX512-BW)
	SetAVX2   = "avx2"        // AVX2, FMA and F16C
	SetPureGo = "purego"      // the Go reference, on every CPU
)

// active names the kernel set installed now.
var active = SetPureGo

// Active names the kernel set in use: SetAMX, SetAVX512, SetAVX2 or SetPureGo.
func Active() string { return active }

// Sets lists the kernel sets this CPU and build can run, fastest first.
func Sets() []string { return availableSets() }

// Use installs the named kernel set ("avx512" is short for SetAVX512).
// It is for command start-up and benchmarks: no product may run concurrently
// with it. Every set computes the same integer block sums; float results agree
// to rounding (see Accuracy in the package doc).
func Use(name string) error {
	name = strings.ToLower(name)
	if name == "avx512" {
		name = SetAVX512
	}
	for _, s := range availableSets() {
		if s == name {
			install(name)
			active = name
			return nil
		}
	}
	return fmt.Errorf("kernel set %q is not available on this CPU and build (available: %s)",
		name, strings.Join(availableSets(), ", "))
}

// useGo installs the pure-Go reference kernels, undoing what init or an
// earlier Use installed. The vector kernels go back to the variables'
// initial values in matmul.go and quantize.go.
func useGo() {
	installed = goRows()
	dotF32Impl, dotF16F32Impl, axpyF16Impl = dotF32SliceGo, dotF16F32Go, axpyF16Go
	f16ToF32Impl, f32ToF16Impl, bf16ToF32Impl = f16ToF32Go, f32ToF16Go, bf16ToF32Go
	roundF16Impl, roundBF16Impl = roundF16Go, roundBF16Go
	expShiftedImpl, weightedSumF16Impl, siluMulImpl = expShiftedGo, weightedSumF16Go, siluMulGo
	quantizeRowQ8_0, quantizeRowQ8_1, quantizeRowQ8_K = quantizeRowQ8_0Go, quantizeRowQ8_1Go, quantizeRowQ8_KGo
}

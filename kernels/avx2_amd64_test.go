//go:build !purego

package kernels

import (
	"slices"
	"testing"

	"github.com/llqt/llqt/formats/ggml"
)

// TestAVX2KernelsWithoutVNNI reruns the shape-consistency tests with the
// AVX2-only kernels installed, so that a machine with AVX512-VNNI (where
// those are replaced) still checks the kernels AVX2-only machines run.
func TestAVX2KernelsWithoutVNNI(t *testing.T) {
	if !hasAVX2 {
		t.Skip("assembly kernels not in use (no AVX2/FMA/F16C)")
	}
	if !hasVNNI {
		t.Skip("the AVX2-only kernels are the ones in use; the other tests cover them")
	}
	useSet(t, SetAVX2)
	for _, typ := range []ggml.Type{ggml.TypeQ8_0, ggml.TypeQ4_0, ggml.TypeQ5_0, ggml.TypeIQ4_NL} {
		if tileKernels()[typ] == nil {
			t.Fatalf("no AVX2 tile for %v", typ)
		}
	}
	// Every type with a VNNI panel has an AVX2 one (word panels for Q8_0
	// and IQ4_XS).
	var panels []ggml.Type
	for typ := range panelKernels() {
		panels = append(panels, typ)
	}
	slices.Sort(panels)
	if want := []ggml.Type{ggml.TypeQ4_0, ggml.TypeQ8_0, ggml.TypeQ4_K, ggml.TypeQ5_K, ggml.TypeQ6_K, ggml.TypeIQ4_NL, ggml.TypeIQ4_XS}; !slices.Equal(panels, want) {
		t.Fatalf("the avx2 set installed panels for %v, want %v", panels, want)
	}
	t.Run("RowsMatchesDot", TestRowsMatchesDot)
	t.Run("Dot4MatchesDot", TestDot4MatchesDot)
	t.Run("TileMatchesDot", TestTileMatchesDot)
	t.Run("PanelMatchesDot", TestPanelMatchesDot)
	t.Run("MatMulThreads", TestMatMulThreads)
	t.Run("MatMulManyMatchesMatMul", TestMatMulManyMatchesMatMul)
	t.Run("AsmMatchesGo", TestAsmMatchesGo)
}

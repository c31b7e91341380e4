//go:build !purego

package block

import (
	"testing"

	"github.com/llqt/llqt/internal/asmcheck"
	"golang.org/x/sys/cpu"
)

// TestHasAVX2 checks the package's own CPUID probe against x/sys/cpu.
func TestHasAVX2(t *testing.T) {
	if got, want := hasAVX2(), cpu.X86.HasAVX2; got != want {
		t.Errorf("hasAVX2() = %v, x/sys/cpu says %v", got, want)
	}
}

// TestNoLegacySSEInTerms checks the generated terms for legacy-SSE
// instructions inside their AVX code.
func TestNoLegacySSEInTerms(t *testing.T) {
	asmcheck.NoLegacySSE(t, "terms_amd64.s")
}

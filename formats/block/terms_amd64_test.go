//go:build !purego

package block

import (
	"testing"

	"golang.org/x/sys/cpu"
)

// TestHasAVX2 checks the package's own CPUID probe against x/sys/cpu.
func TestHasAVX2(t *testing.T) {
	if got, want := hasAVX2(), cpu.X86.HasAVX2; got != want {
		t.Errorf("hasAVX2() = %v, x/sys/cpu says %v", got, want)
	}
}

package kernels

import (
	"testing"

	"github.com/llqt/llqt/internal/asmcheck"
)

func TestNoLegacySSEInAVXKernels(t *testing.T) {
	asmcheck.NoLegacySSE(t, "kernels_amd64.s")
}

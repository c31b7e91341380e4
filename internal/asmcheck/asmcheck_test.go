package asmcheck

import "testing"

// The checker itself, on the shapes that matter: the Q4_K dot's old
// MOVQ r64, xmm (which the committed file had 14 of), an avo float
// argument load before VEX code, and the float return after VZEROUPPER.
func TestLegacySSEChecker(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		bad  int
	}{
		{"movq into xmm between VEX ops", "TEXT ·f(SB), $0\n\tVPXOR Y0, Y0, Y0\n\tMOVQ DI, X2\n\tVPMOVZXBW X2, Y3\n\tRET\n", 1},
		{"sse argument load before VEX code", "TEXT ·f(SB), $0\n\tMOVSS alpha+8(FP), X0\n\tVBROADCASTSS X0, Y0\n\tVZEROUPPER\n\tRET\n", 1},
		{"return store after vzeroupper", "TEXT ·f(SB), $0\n\tVADDSS X1, X0, X0\n\tVZEROUPPER\n\tMOVSS X0, ret+24(FP)\n\tRET\n", 0},
		{"VEX after vzeroupper dirties again", "TEXT ·f(SB), $0\n\tVZEROUPPER\n\tVPXOR Y0, Y0, Y0\n\tMOVQ DI, X2\n\tRET\n", 1},
		{"sse-only function", "TEXT ·f(SB), $0\n\tMOVSS a+0(FP), X0\n\tADDSS X0, X0\n\tMOVSS X0, ret+8(FP)\n\tRET\n", 0},
		{"general registers only", "TEXT ·f(SB), $0\n\tVPXOR Y0, Y0, Y0\n\tMOVQ DI, R8\n\tVZEROUPPER\n\tRET\n", 0},
		{"comment and label ignored", "TEXT ·f(SB), $0\n\tVPXOR Y0, Y0, Y0\n// MOVQ DI, X2\nX2:\n\tVZEROUPPER\n\tRET\n", 0},
		{"two functions checked apart", "TEXT ·f(SB), $0\n\tVPXOR Y0, Y0, Y0\n\tVZEROUPPER\n\tRET\nTEXT ·g(SB), $0\n\tVPXOR Y1, Y1, Y1\n\tMOVQ R9, X2\n\tRET\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := LegacySSEInVEX(tc.src); len(got) != tc.bad {
				t.Errorf("got %d findings %q, want %d", len(got), got, tc.bad)
			}
		})
	}
}

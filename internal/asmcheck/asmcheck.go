// Package asmcheck checks generated Go assembly for instruction mixes that
// are correct but slow. The kernels and formats/block tests run it over
// their committed .s files.
package asmcheck

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// NoLegacySSE fails t for every legacy-SSE instruction in AVX code (see
// LegacySSEInVEX) in the Go assembly file at path, which the package's
// avo generator must then emit in its VEX form.
func NoLegacySSE(t testing.TB, path string) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range LegacySSEInVEX(string(src)) {
		t.Errorf("%s: legacy-SSE instruction in AVX code (emit the VEX form in the generator): %s", path, b)
	}
}

// vectorReg matches an X, Y or Z register operand of Go assembly.
var vectorReg = regexp.MustCompile(`\b[XYZ]([0-9]|[12][0-9]|3[01])\b`)

// LegacySSEInVEX lists the legacy-SSE instructions that touch a vector
// register inside a function that also runs VEX or EVEX code, unless a
// VZEROUPPER comes between the last VEX instruction and them. Intel cores
// (Skylake server onward) pay for every such SSE↔AVX transition while the
// upper halves of the vector registers are live — the Q4_K dot ran at
// 0.5 GB/s instead of 8 on a Xeon for one MOVQ r64, xmm per block — while
// AMD cores do not, so speed on one vendor proves nothing here.
//
// In Go assembly every VEX/EVEX vector instruction is spelled with a leading
// V (VMOVQ, VPDPBUSD, VZEROUPPER); the mask-register K instructions touch no
// X/Y/Z register. So a mnemonic without the V that names an X/Y/Z register
// is legacy SSE.
func LegacySSEInVEX(src string) []string {
	type inst struct {
		line     int
		mnemonic string
		text     string
	}
	var (
		bad  []string
		fn   string
		body []inst
	)
	flush := func() {
		usesVEX := false
		for _, in := range body {
			if strings.HasPrefix(in.mnemonic, "V") {
				usesVEX = true
				break
			}
		}
		if !usesVEX {
			return
		}
		// Clean until the first VEX instruction would also be defensible (the
		// caller's upper state is unknown), but the rule asked for is
		// stricter and simpler: only a VZEROUPPER makes SSE safe.
		clean := false
		for _, in := range body {
			switch {
			case in.mnemonic == "VZEROUPPER":
				clean = true
			case strings.HasPrefix(in.mnemonic, "V"):
				clean = false
			case !clean && vectorReg.MatchString(in.text):
				bad = append(bad, fmt.Sprintf("line %d in %s: %s", in.line, fn, in.text))
			}
		}
	}
	sc := bufio.NewScanner(strings.NewReader(src))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "TEXT" {
			flush()
			fn, body = fields[1], nil
			continue
		}
		// Instructions are indented; labels ("name:") and directives
		// (DATA, GLOBL) start in column one.
		if line[0] != '\t' && line[0] != ' ' {
			continue
		}
		body = append(body, inst{line: n, mnemonic: fields[0], text: strings.Join(fields, " ")})
	}
	flush()
	return bad
}

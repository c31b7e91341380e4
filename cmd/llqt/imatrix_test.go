package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/internal/fixtures"
	"github.com/llqt/llqt/quant"
)

// TestImatrixCommand: llqt imatrix in both output formats, what quantize
// --imatrix makes of them, --in-file combining, and the mistakes a user
// makes first.
func TestImatrixCommand(t *testing.T) {
	model := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	text := fixtures.Path(t, "text/tinystories_eval.txt")
	dir := t.TempDir()
	dat, gg := filepath.Join(dir, "im.dat"), filepath.Join(dir, "im.gguf")

	out, _, err := runEngineCmd(t, "imatrix", "-m", model, "-f", text, "-o", dat, "-c", "64", "--chunks", "4", "-t", "2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "[4]") || !strings.Contains(out, "Final estimate: PPL = ") || !strings.Contains(out, "stored 42 entries after 4 chunks") {
		t.Errorf("output:\n%s", out)
	}
	m, err := quant.ReadImatrix(dat)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Weights) != 42 || m.Chunks != 4 || m.Dataset != text {
		t.Errorf("%s: %d entries, %d chunks, dataset %q", dat, len(m.Weights), m.Chunks, m.Dataset)
	}

	js, _, err := runEngineCmd(t, "imatrix", model, "-f", text, "-o", gg, "-c", "64", "--chunks", "2", "--process-output", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(js), &rec); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if rec["format"] != "gguf" || rec["entries"].(float64) != 43 || rec["n_chunks"].(float64) != 2 {
		t.Errorf("--json: %v", rec)
	}
	if g, err := quant.ReadImatrix(gg); err != nil || len(g.Weights) != 43 || g.Weights["output.weight"] == nil {
		t.Errorf("GGUF imatrix: %v", err)
	}

	q := filepath.Join(dir, "q.gguf")
	if _, _, err := runEngineCmd(t, "quantize", "--imatrix", gg, model, q, "Q4_K_M"); err != nil {
		t.Fatalf("quantize --imatrix with a GGUF imatrix: %v", err)
	}

	comb := filepath.Join(dir, "comb.dat")
	if _, _, err := runEngineCmd(t, "imatrix", model, "--in-file", dat, "--in-file", gg, "-o", comb); err != nil {
		t.Fatal(err)
	}
	if c, err := quant.ReadImatrix(comb); err != nil || len(c.Weights) != 43 || c.Chunks != 0 || c.Dataset != "" {
		t.Errorf("combined: %v (b4748 writes chunk count 0 and no dataset when only combining)", err)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no text", []string{"imatrix", model}, "no text"},
		{"exists", []string{"imatrix", model, "-f", text, "-o", dat}, "exists"},
		{"dir", []string{"imatrix", model, "-f", text, "-o", dir}, "is a directory"},
		{"format", []string{"imatrix", model, "-f", text, "-o", filepath.Join(dir, "x"), "--output-format", "json"}, "--output-format"},
		{"short text", []string{"imatrix", model, "-f", text, "-o", filepath.Join(dir, "y.dat"), "-c", "100000"}, "too short"},
		{"in-file is out", []string{"imatrix", model, "--in-file", dat, "-o", dat, "--force"}, "never modified"},
	} {
		before, _ := os.ReadDir(dir)
		_, _, err := runEngineCmd(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
		if after, _ := os.ReadDir(dir); len(after) != len(before) {
			t.Errorf("%s: the failed run left files behind", tc.name)
		}
	}
}

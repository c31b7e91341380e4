package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/internal/fixtures"
	"github.com/llqt/llqt/internal/synth"
)

// TestNewUserLlama3Path is the path of issue 12's closing note: a user's
// Llama 3 checkpoint (here synthetic weights in Llama 3's layout, with the
// real Llama 3 tokenizer.json) goes through convert → quantize Q4_K_M →
// eval perplexity → generate, each one command, as README shows them.
func TestNewUserLlama3Path(t *testing.T) {
	requireBuilt(t)
	tokDir := fixtures.Path(t, "hf-tokenizers/llama3")
	text := fixtures.Path(t, "text/wiki.test.raw")
	dir := t.TempDir()
	hf := filepath.Join(dir, "Llama-3-mini")
	o := synth.Llama3()
	o.TokenizerDir = tokDir
	if err := synth.Write(hf, o); err != nil {
		t.Fatal(err)
	}
	f16 := filepath.Join(dir, "llama3-f16.gguf")
	q4 := filepath.Join(dir, "llama3-Q4_K_M.gguf")
	steps := []struct {
		args   []string
		stdout []string // each must appear in stdout+stderr
	}{
		{[]string{"convert", hf, f16, "--outtype", "f16"}, []string{"wrote "}},
		{[]string{"inspect", f16}, []string{`tokenizer.ggml.model                    string  "gpt2"`, "rope_freqs.weight", "128256"}},
		{[]string{"quantize", f16, q4, "Q4_K_M"}, []string{"Q4_K"}},
		{[]string{"eval", "perplexity", q4, "-f", text, "-c", "128", "--chunks", "2"}, []string{"Final estimate: PPL = "}},
		{[]string{"generate", q4, "-p", "Once upon a time", "-n", "8", "--temp", "0"}, []string{"stopped: -n 8 reached"}},
		{[]string{"tokenize", q4, "-p", "Hello world"}, []string{"9906", "1917"}},
	}
	for _, s := range steps {
		r := run(t, llqtBin, s.args...)
		if r.code != 0 {
			t.Fatalf("%v", r)
		}
		out := r.stdout + r.stderr
		for _, want := range s.stdout {
			if !strings.Contains(out, want) {
				t.Errorf("llqt %s: output lacks %q:\n%s", strings.Join(s.args, " "), want, out)
			}
		}
		for _, bad := range []string{"NaN", "Inf"} {
			if strings.Contains(out, bad) {
				t.Errorf("llqt %s printed %s:\n%s", strings.Join(s.args, " "), bad, out)
			}
		}
	}
}

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/llqt/llqt/internal/cli"
	"github.com/llqt/llqt/internal/fixtures"
	"github.com/llqt/llqt/perplexity"
)

type pplJSON struct {
	PPL           float64              `json:"ppl"`
	PPLStderr     float64              `json:"ppl_stderr"`
	NCtx          int                  `json:"n_ctx"`
	NChunks       int                  `json:"n_chunks"`
	NTokensScored int                  `json:"n_tokens_scored"`
	Seconds       float64              `json:"seconds"`
	TokensPerSec  float64              `json:"tokens_per_second"`
	Method        string               `json:"method"`
	KLD           *perplexity.KLDStats `json:"kld"`
}

func TestEvalPerplexityOutput(t *testing.T) {
	model := fixtures.Path(t, "golden/tiny-llama-Q4_0.gguf")
	text := fixtures.Path(t, "text/tinystories_eval.txt")
	out, _, err := runLLQT(t, "eval", "perplexity", model, "-f", text, "-c", "64", "--chunks", "3", "-t", "2")
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`(?m)^method: llama-perplexity \(b4748\)`,
		`(?m)^settings: n_ctx 64, n_batch 2048, 3 chunks of 64 tokens \(93 tokens scored of 62996\), threads 2, KV cache F16$`,
		`(?m)^\[1\]\d+\.\d{4},\[2\]\d+\.\d{4},\[3\]\d+\.\d{4},$`,
		`(?m)^Final estimate: PPL = \d+\.\d{4} \+/- \d+\.\d{5}$`,
		`(?m)^192 tokens in \d+\.\d\d s: \d+\.\d tokens/s$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s:\n%s", re, out)
		}
	}
}

// TestEvalJSONIndependentOfBatchAndThreads: one JSON object, and the same
// figures whatever -b and -t.
func TestEvalJSONIndependentOfBatchAndThreads(t *testing.T) {
	model := fixtures.Path(t, "golden/tiny-llama-Q4_0.gguf")
	text := fixtures.Path(t, "text/tinystories_eval.txt")
	var ref *pplJSON
	for _, bt := range [][2]string{{"2048", "2"}, {"48", "1"}, {"128", "2"}} {
		out, _, err := runLLQT(t, "eval", "perplexity", model, "-f", text, "-c", "64", "--chunks", "4", "-b", bt[0], "-t", bt[1], "--json")
		if err != nil {
			t.Fatal(err)
		}
		var got pplJSON
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("-b %s: %v\n%s", bt[0], err, out)
		}
		if got.NCtx != 64 || got.NChunks != 4 || got.NTokensScored != 4*31 || got.Seconds <= 0 || got.TokensPerSec <= 0 || got.Method == "" {
			t.Errorf("-b %s: %+v", bt[0], got)
		}
		if ref == nil {
			ref = &got
		} else if got.PPL != ref.PPL || got.PPLStderr != ref.PPLStderr {
			t.Errorf("-b %s -t %s: PPL %v ± %v, want %v ± %v", bt[0], bt[1], got.PPL, got.PPLStderr, ref.PPL, ref.PPLStderr)
		}
	}
}

func TestEvalKLDivergenceTwoRuns(t *testing.T) {
	base := fixtures.Path(t, "golden/tiny-llama-q8_0.gguf")
	quant := fixtures.Path(t, "golden/tiny-llama-Q2_K.gguf")
	text := fixtures.Path(t, "text/tinystories_eval.txt")
	file := filepath.Join(t.TempDir(), "base.logits")
	if _, _, err := runLLQT(t, "eval", "perplexity", base, "-f", text, "-c", "64", "--chunks", "4", "--kl-divergence-base", file); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != perplexity.BaseFileSize(64, 4096, 4) {
		t.Errorf("base file %d bytes, want %d", st.Size(), perplexity.BaseFileSize(64, 4096, 4))
	}
	// Writing it again needs --force.
	if _, _, err := runLLQT(t, "eval", "perplexity", base, "-f", text, "-c", "64", "--chunks", "4", "--kl-divergence-base", file); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("overwrite without --force: %v", err)
	}
	out, _, err := runLLQT(t, "eval", "perplexity", quant, "--kl-divergence-base", file, "--kl-divergence")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"====== Perplexity statistics ======", "Mean    KLD:", "Same top p:", perplexity.ChunkHeader} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	js, _, err := runLLQT(t, "eval", "perplexity", quant, "--kl-divergence-base", file, "--kl-divergence", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got pplJSON
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatal(err)
	}
	if got.KLD == nil || got.KLD.KLD <= 0 || got.KLD.SameTop <= 0.5 || got.NTokensScored != 124 {
		t.Errorf("KL JSON %+v", got)
	}
	// -c must match the file.
	if _, _, err := runLLQT(t, "eval", "perplexity", quant, "--kl-divergence-base", file, "--kl-divergence", "-c", "128"); err == nil || !strings.Contains(err.Error(), "n_ctx 64, but -c is 128") {
		t.Errorf("n_ctx mismatch: %v", err)
	}
}

func TestEvalBadInput(t *testing.T) {
	model := fixtures.Path(t, "golden/tiny-llama-Q4_0.gguf")
	dir := t.TempDir()
	short := filepath.Join(dir, "short.txt")
	os.WriteFile(short, []byte("Once upon a time there was a cat.\n"), 0o644)
	// A base file with another vocabulary.
	other := filepath.Join(dir, "other.logits")
	f, _ := os.Create(other)
	bw, err := perplexity.NewBaseWriter(f, 8, 100, make([]int32, 8))
	if err != nil {
		t.Fatal(err)
	}
	bw.WriteChunk(make([]uint16, 3*(2*50+4)))
	bw.Close()
	f.Close()
	notBase := filepath.Join(dir, "not.logits")
	os.WriteFile(notBase, []byte("GGUF and more"), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{model}, "no text"},
		{[]string{model, "-f", filepath.Join(dir, "missing.txt")}, "missing.txt"},
		{[]string{model, "-f", short}, "needs at least 1024"},
		{[]string{model, "-f", short, "-c", "2"}, "too small"},
		{[]string{model, "--kl-divergence"}, "needs --kl-divergence-base"},
		{[]string{model, "--kl-divergence", "--kl-divergence-base", filepath.Join(dir, "nope")}, "nope"},
		{[]string{model, "--kl-divergence", "--kl-divergence-base", other}, "vocabulary of 100, the model has 4096"},
		{[]string{model, "--kl-divergence", "--kl-divergence-base", notBase}, "not a KL-divergence base file"},
		{[]string{filepath.Join(dir, "missing.gguf"), "-f", short}, "missing.gguf"},
	}
	for _, c := range cases {
		_, _, err := runLLQT(t, append([]string{"eval", "perplexity"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.args, err, c.want)
		}
	}
}

func TestReportCommandGateAndMerge(t *testing.T) {
	if testing.Short() {
		t.Skip("converts, quantizes and evaluates; skipped with -short")
	}
	src := fixtures.Path(t, "tiny-llama-hf")
	text := fixtures.Path(t, "text/tinystories_eval.txt")
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	common := []string{"-f", text, "-c", "128", "--chunks", "2", "-t", "2", "--bench-prompt", "16", "--bench-gen", "4", "--bench-reps", "1"}
	_, stderr, err := runLLQT(t, append([]string{"report", src, "--types", "f32,q4_0", "--out", a,
		"--gate", "q4_0:kld<0.0000001,dppl<50%;f32:dppl<=0"}, common...)...)
	if cli.Code(err) != gateExitCode || err == nil || err.Error() != "1 of 3 gate conditions failed" ||
		!regexp.MustCompile(`(?m)^gate q4_0:kld<0.0000001 failed: kld is [0-9.e-]+, must be < 1e-07$`).MatchString(stderr) ||
		strings.Contains(stderr, "dppl<50%") {
		t.Fatalf("gate: code %d, err %v\n%s", cli.Code(err), err, stderr)
	}
	for _, f := range []string{"report.md", "report.json", "report.csv", "size_vs_quality.png", "size_vs_quality.svg"} {
		if _, err := os.Stat(filepath.Join(a, f)); err != nil {
			t.Errorf("%s not written before the gate failed: %v", f, err)
		}
	}
	if _, _, err := runLLQT(t, append([]string{"report", src, "--types", "f32,q8_0", "--out", b}, common...)...); err != nil {
		t.Fatal(err)
	}
	merged := filepath.Join(dir, "merged")
	out, _, err := runLLQT(t, "report", "--merge", "--out", merged, filepath.Join(a, "report.json"), filepath.Join(b, "report.json"),
		"--gate", "q8_0:kld<0.01,top>90%;q4_0:dppl<20%")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Q4_0", "Q8_0", "F32 (base)", "Merged from 2 reports"} {
		if !strings.Contains(out, want) {
			t.Errorf("merged report lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := runLLQT(t, "report", src, "--out", dir); err == nil || !strings.Contains(err.Error(), "--types") {
		t.Errorf("no types: %v", err)
	}
	if _, _, err := runLLQT(t, "report", src, "--types", "q4_0", "-f", text, "--out", dir, "--gate", "q4_0:kld"); err == nil || !strings.Contains(err.Error(), "--gate") {
		t.Errorf("bad gate: %v", err)
	}
}

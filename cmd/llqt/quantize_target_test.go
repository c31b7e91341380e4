package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/fixtures"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
	}{{"1024", 1024}, {"4K", 4096}, {"1.5M", 1572864}, {"2g", 2 << 30}, {"700MiB", 700 << 20}, {"3KB", 3072}} {
		if got, err := parseSize(tc.in); err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "-1", "0", "12X", "M"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

// kldOf is the mean KL-divergence of model against the base file.
func kldOf(t *testing.T, model, base string) float64 {
	t.Helper()
	out, _, err := runEngineCmd(t, "eval", "perplexity", model, "--kl-divergence-base", base, "--kl-divergence", "--json", "-t", "2")
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		KLD struct {
			Mean float64 `json:"kld_mean"`
		} `json:"kld"`
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return rec.KLD.Mean
}

// TestTargetSizeBeatsPreset: quantize --target-size at Q4_K_M's file size,
// with sensitivities measured on the training text, makes a file no larger
// and within 1% of it, whose KL-divergence on the held-out text is at most
// 0.7 of Q4_K_M's (the preset quantized by llqt, byte-identical to
// llama-quantize), with the same importance matrix.
func TestTargetSizeBeatsPreset(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 44 tensors and three KL-divergence runs; skipped with -short")
	}
	f32 := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	train := fixtures.Path(t, "text/tinystories_train.txt")
	eval := fixtures.Path(t, "text/tinystories_eval.txt")
	im := fixtures.Path(t, "golden2/imatrix-tinystories.dat")
	dir := t.TempDir()
	preset, tgt, base := filepath.Join(dir, "q4km.gguf"), filepath.Join(dir, "target.gguf"), filepath.Join(dir, "base.kld")
	if _, _, err := runEngineCmd(t, "quantize", "--imatrix", im, f32, preset, "Q4_K_M"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(preset)
	if err != nil {
		t.Fatal(err)
	}
	size := st.Size()
	if _, _, err := runEngineCmd(t, "quantize", "--imatrix", im, f32, tgt, "--target-size", strconv.FormatInt(size, 10),
		"--calibration", train, "--calibration-chunks", "2", "--calibration-ctx", "128"); err != nil {
		t.Fatal(err)
	}
	st, err = os.Stat(tgt)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > size || float64(st.Size()) < 0.99*float64(size) {
		t.Errorf("target file %d bytes for a target of %d (want at most it, within 1%%)", st.Size(), size)
	}
	g, err := gguf.Open(tgt)
	if err != nil {
		t.Fatal(err)
	}
	plan, _ := g.KV.Get("llqt.quantize.plan")
	method, _ := g.KV.String("llqt.quantize.method")
	g.Close()
	if plan == nil || method != "hybrid" {
		t.Errorf("plan metadata %v, method %q", plan, method)
	}
	if _, _, err := runEngineCmd(t, "eval", "perplexity", f32, "-f", eval, "-c", "256", "--chunks", "40",
		"--kl-divergence-base", base, "-t", "2"); err != nil {
		t.Fatal(err)
	}
	kp, kt := kldOf(t, preset, base), kldOf(t, tgt, base)
	t.Logf("same size (%d bytes): Q4_K_M mean KLD %.5f, target %.5f (%.2f×)", size, kp, kt, kt/kp)
	if kt > 0.7*kp {
		t.Errorf("target KLD %.5f is more than 0.7 × Q4_K_M's %.5f", kt, kp)
	}
}

func TestTargetFlagErrors(t *testing.T) {
	f32 := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	dir := t.TempDir()
	out := filepath.Join(dir, "o.gguf")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"type and target", []string{"quantize", f32, out, "Q4_K_M", "--target-bpw", "4"}, "one or the other"},
		{"both targets", []string{"quantize", f32, out, "--target-bpw", "4", "--target-size", "3M"}, "not both"},
		{"bad size", []string{"quantize", f32, out, "--target-size", "lots"}, "--target-size"},
		{"too small", []string{"quantize", f32, out, "--target-size", "100K"}, "too small"},
		{"bpw range", []string{"quantize", f32, out, "--target-bpw", "40"}, "between 0 and 16"},
		{"kld without text", []string{"quantize", f32, out, "--target-bpw", "4", "--sensitivity", "kld"}, "--calibration"},
	} {
		_, _, err := runEngineCmd(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: output written", tc.name)
		}
	}
	// The proxy needs no model run: a bits-per-weight target on its own.
	js, _, err := runEngineCmd(t, "quantize", f32, out, "--target-bpw", "4.5", "--dry-run", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		BPW    float64 `json:"bpw"`
		Target struct {
			Method  string `json:"method"`
			Tensors []any  `json:"tensors"`
		} `json:"target"`
	}
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.BPW > 4.5 || rep.BPW < 4.4 || rep.Target.Method != "proxy" || len(rep.Target.Tensors) == 0 {
		t.Errorf("--target-bpw 4.5 --dry-run: bpw %g, method %q, %d tensors", rep.BPW, rep.Target.Method, len(rep.Target.Tensors))
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/fixtures"
	"github.com/llqt/llqt/quant"
)

// runLLQT runs the root command with args and returns stdout and the error.
func runLLQT(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func sameFile(t *testing.T, got, want string) {
	t.Helper()
	a, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("%s differs from %s", got, filepath.Base(want))
	}
}

// TestQuantizeCommandForms: --type, the short flags (any case) and the
// positional type all give llama-quantize's file byte for byte.
func TestQuantizeCommandForms(t *testing.T) {
	in := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	golden := fixtures.Path(t, "golden/tiny-llama-Q4_K_M.gguf")
	dir := t.TempDir()
	for i, form := range [][]string{
		{"--type", "q4_k_m"},
		{"--q4_k"},
		{"--Q4_K_M"},
		{"Q4_K_M"},
	} {
		out := filepath.Join(dir, "out"+string(rune('a'+i))+".gguf")
		args := append([]string{"quantize", in, out, "-t", "2"}, form...)
		stdout, _, err := runLLQT(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", form, err)
		}
		if !strings.Contains(stdout, "Q4_K") || !strings.Contains(stdout, "BPW") {
			t.Errorf("%v: no totals table:\n%s", form, stdout)
		}
		sameFile(t, out, golden)
	}
}

func TestQuantizeCommandGoldenFiles(t *testing.T) {
	in := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	for _, preset := range []string{"Q6_K", "Q4_0", "Q2_K", "IQ4_XS"} {
		golden := fixtures.Path(t, "golden/tiny-llama-"+preset+".gguf")
		out := filepath.Join(t.TempDir(), "out.gguf")
		if _, _, err := runLLQT(t, "quantize", in, out, preset, "-t", "8"); err != nil {
			t.Fatal(err)
		}
		sameFile(t, out, golden)
	}
	edge := fixtures.Path(t, "golden/edge-f32.gguf")
	out := filepath.Join(t.TempDir(), "edge.gguf")
	if _, _, err := runLLQT(t, "quantize", "--pure", edge, out, "--q3_k_m", "-t", "1"); err != nil {
		t.Fatal(err)
	}
	sameFile(t, out, fixtures.Path(t, "golden/edge-Q3_K_M.gguf"))
}

func TestQuantizeCommandDryRunJSON(t *testing.T) {
	in := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	out := filepath.Join(t.TempDir(), "never.gguf")
	stdout, _, err := runLLQT(t, "quantize", in, out, "--q5_k_s", "--dry-run", "--json", "--tensor-type", `blk\.0\.attn_q=Q8_0`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("--dry-run wrote the output")
	}
	var rep quantizeReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if rep.Type != "Q5_K_S" || rep.FileType != 16 || len(rep.Tensors) != 57 || !rep.DryRun || rep.BytesOut == 0 {
		t.Errorf("report: type %s ftype %d tensors %d dry %v out %d", rep.Type, rep.FileType, len(rep.Tensors), rep.DryRun, rep.BytesOut)
	}
	for _, tt := range rep.Tensors {
		if tt.Name == "blk.0.attn_q.weight" && tt.To != "Q8_0" {
			t.Errorf("override ignored: %+v", tt)
		}
	}
	stdout, _, err = runLLQT(t, "quantize", in, out, "--q5_k_s", "--dry-run")
	if err != nil || !strings.Contains(stdout, "blk.5.ffn_down.weight") || !strings.Contains(stdout, "dry run") {
		t.Errorf("dry-run table: %v\n%s", err, stdout)
	}
}

func TestQuantizeCommandErrors(t *testing.T) {
	in := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	q8 := fixtures.Path(t, "golden/tiny-llama-q8_0.gguf")
	hf := fixtures.Path(t, "tiny-llama-hf")
	dir := t.TempDir()
	existing := filepath.Join(dir, "exists.gguf")
	if err := os.WriteFile(existing, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{in, filepath.Join(dir, "a.gguf")}, "no quantization type"},
		{[]string{in, filepath.Join(dir, "a.gguf"), "--q4_k", "--q8_0"}, "more than one"},
		{[]string{in, filepath.Join(dir, "a.gguf"), "Q9_K"}, "unknown quantization type"},
		{[]string{in, filepath.Join(dir, "a.gguf"), "--q2_k_s"}, "importance matrix"},
		{[]string{in, existing, "--q4_k"}, "--force"},
		{[]string{in, in, "--q4_k", "--force"}, "never modified"},
		{[]string{q8, filepath.Join(dir, "b.gguf"), "--q4_k"}, "--allow-requantize"},
		{[]string{in, filepath.Join(dir, "c.gguf"), "--q4_k", "--tensor-type", "attn_q"}, "REGEX=TYPE"},
		{[]string{in, filepath.Join(dir, "c.gguf"), "--q4_k", "--output-tensor-type", "Q7"}, "unknown ggml type"},
		{[]string{hf, filepath.Join(dir, "d.gguf"), "--q4_k", "--convert-outtype", "f8"}, "f8"},
		{[]string{dir, filepath.Join(dir, "d.gguf"), "--q4_k"}, "config.json"},
	} {
		_, _, err := runLLQT(t, append([]string{"quantize"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep" {
		t.Error("existing output overwritten without --force")
	}
	for _, name := range []string{"a.gguf", "b.gguf", "c.gguf", "d.gguf"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("failed run left %s", name)
		}
	}
	// Requantizing works when asked for.
	out := filepath.Join(dir, "requant.gguf")
	if _, _, err := runLLQT(t, "quantize", q8, out, "--q4_0", "--allow-requantize", "-t", "2"); err != nil {
		t.Error(err)
	}
}

// TestQuantizeCommandHF: a Hugging Face directory is converted and quantized
// in one pass, giving what llama-quantize makes of convert_hf_to_gguf's f32
// file.
func TestQuantizeCommandHF(t *testing.T) {
	hf := fixtures.Path(t, "tiny-llama-hf")
	for _, preset := range []string{"Q4_K_M", "Q8_0"} {
		out := filepath.Join(t.TempDir(), "hf.gguf")
		if _, _, err := runLLQT(t, "quantize", hf, out, preset, "-t", "2"); err != nil {
			t.Fatal(err)
		}
		if preset == "Q4_K_M" {
			sameFile(t, out, fixtures.Path(t, "golden/tiny-llama-Q4_K_M.gguf"))
			continue
		}
		// The Q8_0 golden is a manifest; compare with the two-step route.
		two := filepath.Join(t.TempDir(), "two.gguf")
		if _, _, err := runLLQT(t, "quantize", fixtures.Path(t, "golden/tiny-llama-f32.gguf"), two, preset, "-t", "2"); err != nil {
			t.Fatal(err)
		}
		sameFile(t, out, two)
	}
}

// TestQuantizeCommandImatrix: Q2_K_S runs with an importance matrix and
// records its provenance as llama-quantize does.
func TestQuantizeCommandImatrix(t *testing.T) {
	in := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	f, err := gguf.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	var entries []quant.ImatrixEntry
	for _, ti := range f.Tensors {
		if len(ti.Shape) == 2 && ti.Name != "token_embd.weight" {
			v := make([]float32, ti.Shape[0])
			for i := range v {
				v[i] = float32(1 + i%7)
			}
			entries = append(entries, quant.ImatrixEntry{Name: ti.Name, NCall: 1, Values: v})
		}
	}
	f.Close()
	dir := t.TempDir()
	imPath := filepath.Join(dir, "imatrix.dat")
	var buf bytes.Buffer
	if err := quant.WriteImatrix(&buf, entries, 12, "calib.txt"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(imPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "q2ks.gguf")
	if _, _, err := runLLQT(t, "quantize", in, out, "--q2_k_s", "--imatrix", imPath, "-t", "2"); err != nil {
		t.Fatal(err)
	}
	g, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	n := len(g.KV)
	if n < 4 || g.KV[n-4].Key != "quantize.imatrix.file" || g.KV[n-4].Value != imPath || g.KV[n-3].Value != "calib.txt" ||
		g.KV[n-2].Value != int32(len(entries)) || g.KV[n-1].Value != int32(12) {
		t.Errorf("imatrix metadata: %v", g.KV[max(0, n-6):])
	}
	if v, _ := g.KV.Uint("general.file_type"); v != 21 {
		t.Errorf("file_type %d, want 21", v)
	}
}

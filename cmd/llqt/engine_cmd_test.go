package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/internal/cpuinfo"
	"github.com/llqt/llqt/internal/fixtures"
	"github.com/llqt/llqt/kernels"
)

// runEngineCmd runs the root command with args, returning stdout and stderr.
func runEngineCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(""))
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func TestTokenizeFormats(t *testing.T) {
	vocab := fixtures.Path(t, "vocab/ggml-vocab-llama-spm.gguf")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-p", "Hello world", "--ids"}, "[1, 15043, 3186]\n"},
		{[]string{"-p", "Hello world", "--ids", "--no-bos"}, "[15043, 3186]\n"},
		{[]string{"-p", "Hello world"}, "     1 -> '<s>'\n 15043 -> ' Hello'\n  3186 -> ' world'\n"},
		{[]string{"-p", "Hello world", "--ids", "--show-count"}, "[1, 15043, 3186]\nTotal number of tokens: 3\n"},
		// "<s>" in the text is BOS unless special parsing is off.
		{[]string{"-p", "<s>", "--ids", "--no-bos"}, "[1]\n"},
	}
	for _, tc := range cases {
		got, _, err := runEngineCmd(t, append([]string{"tokenize", vocab}, tc.args...)...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got != tc.want {
			t.Errorf("%v:\n got %q\nwant %q", tc.args, got, tc.want)
		}
	}
	noParse, _, err := runEngineCmd(t, "tokenize", vocab, "-p", "<s>", "--ids", "--no-bos", "--no-parse-special")
	if err != nil {
		t.Fatal(err)
	}
	if noParse == "[1]\n" {
		t.Errorf("--no-parse-special still made <s> the BOS token")
	}
	// -p processes escapes unless --no-escape; -f is verbatim.
	esc, _, _ := runEngineCmd(t, "tokenize", vocab, "-p", `a\nb`, "--ids")
	raw, _, _ := runEngineCmd(t, "tokenize", vocab, "-p", `a\nb`, "--ids", "--no-escape")
	file := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(file, []byte("a\nb"), 0o644); err != nil {
		t.Fatal(err)
	}
	fromFile, _, err := runEngineCmd(t, "tokenize", vocab, "-f", file, "--ids")
	if err != nil {
		t.Fatal(err)
	}
	if esc != fromFile || esc == raw {
		t.Errorf("escapes: -p %q, --no-escape %q, -f %q", esc, raw, fromFile)
	}
	if _, _, err := runEngineCmd(t, "tokenize", vocab); err == nil {
		t.Error("no input was accepted")
	}
	if _, _, err := runEngineCmd(t, "tokenize", vocab, "-p", "x", "-f", file); err == nil {
		t.Error("-p with -f was accepted")
	}
}

// TestTokenizeFileMatchesLlamaTokenize compares the whole evaluation text
// with llama-tokenize's --ids output.
func TestTokenizeFileMatchesLlamaTokenize(t *testing.T) {
	model := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	text := fixtures.Path(t, "text/tinystories_eval.txt")
	want, err := os.ReadFile(fixtures.Path(t, "golden/tokens-tinystories_eval.ids"))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := runEngineCmd(t, "tokenize", model, "-f", text, "--ids")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
		t.Errorf("ids differ from llama-tokenize's (%d vs %d bytes)", len(got), len(want))
	}
}

func TestProcessEscapes(t *testing.T) {
	for in, want := range map[string]string{
		`a\nb`: "a\nb", `\t\r\\`: "\t\r\\", `\'\"`: `'"`, `\x41\x4`: `A\x4`, `\q`: `\q`, `end\`: `end\`,
	} {
		if got := processEscapes(in); got != want {
			t.Errorf("processEscapes(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestGenerateGreedyMatchesLlamaSimple: --temp 0 prints llama-simple's
// continuation after the prompt.
func TestGenerateGreedyMatchesLlamaSimple(t *testing.T) {
	model := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	raw, err := os.ReadFile(fixtures.Path(t, "golden/generate.json"))
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Cases []struct {
			Prompt string `json:"prompt"`
			Output string `json:"output"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	tc := golden.Cases[0]
	out, errOut, err := runEngineCmd(t, "generate", model, "-p", tc.Prompt, "-n", "48", "--temp", "0", "-t", "2")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimPrefix(tc.Output, "<s> "); out != want {
		t.Errorf("got  %q\nwant %q", out, want)
	}
	if !strings.Contains(errOut, "prompt:") || !strings.Contains(errOut, "t/s") {
		t.Errorf("no speed report on stderr: %q", errOut)
	}
	// Sampling with a seed repeats; beam search runs.
	a, _, err := runEngineCmd(t, "generate", model, "-p", tc.Prompt, "-n", "12", "--seed", "7", "-t", "2")
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := runEngineCmd(t, "generate", model, "-p", tc.Prompt, "-n", "12", "--seed", "7", "-t", "2")
	if a != b {
		t.Errorf("same seed, different text:\n%q\n%q", a, b)
	}
	beam, _, err := runEngineCmd(t, "generate", model, "-p", tc.Prompt, "-n", "8", "--beam", "3", "-t", "2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(beam, tc.Prompt) || len(beam) <= len(tc.Prompt)+1 {
		t.Errorf("beam search printed %q", beam)
	}
}

func TestBenchOutputs(t *testing.T) {
	model := fixtures.Path(t, "golden/tiny-llama-q8_0.gguf")
	out, _, err := runEngineCmd(t, "bench", model, "-p", "16", "-n", "4", "-r", "2", "-t", "2", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records, want pp16 and tg4", len(recs))
	}
	for _, key := range []string{"n_prompt", "n_gen", "n_threads", "model_size", "model_n_params", "avg_ns",
		"stddev_ns", "avg_ts", "stddev_ts", "samples_ts", "samples_ns", "model_type", "type_k"} {
		if _, ok := recs[0][key]; !ok {
			t.Errorf("JSON record lacks %s", key)
		}
	}
	if recs[0]["n_prompt"].(float64) != 16 || recs[1]["n_gen"].(float64) != 4 || recs[0]["model_type"] != "llama ?B Q8_0" {
		t.Errorf("records: %v", recs)
	}
	if s := recs[1]["samples_ts"].([]any); len(s) != 2 {
		t.Errorf("%d samples, want 2", len(s))
	}
	md, _, err := runEngineCmd(t, "bench", model, "-p", "8", "-n", "2", "-r", "1", "-t", "2")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(md, "\n")
	if len(lines) < 4 || !strings.HasPrefix(lines[0], "| model ") || !strings.Contains(lines[2], " pp8 |") ||
		!strings.Contains(lines[3], " tg2 |") || !strings.Contains(lines[2], "±") {
		t.Errorf("markdown table:\n%s", md)
	}
}

// Bench names the CPU and the kernel set in both outputs, and --kernels
// runs every set this machine has (purego always), so one AVX-512 machine
// can report the AVX2 path's speed too.
func TestBenchKernelSets(t *testing.T) {
	model := fixtures.Path(t, "golden/tiny-llama-q8_0.gguf")
	t.Cleanup(func() { kernels.Use(kernels.Sets()[0]) })
	for _, set := range kernels.Sets() {
		out, _, err := runEngineCmd(t, "bench", model, "-p", "8", "-n", "0", "-r", "1", "-t", "1", "--kernels", set, "--json")
		if err != nil {
			t.Fatalf("--kernels %s: %v", set, err)
		}
		var recs []map[string]any
		if err := json.Unmarshal([]byte(out), &recs); err != nil || len(recs) != 1 {
			t.Fatalf("--kernels %s: %v\n%s", set, err, out)
		}
		if recs[0]["kernels"] != set || recs[0]["cpu_info"] != cpuinfo.Model() {
			t.Errorf("--kernels %s: record says kernels %v, cpu_info %v", set, recs[0]["kernels"], recs[0]["cpu_info"])
		}
		md, _, err := runEngineCmd(t, "bench", model, "-p", "8", "-n", "0", "-r", "1", "-t", "1", "--kernels", set)
		if err != nil {
			t.Fatal(err)
		}
		if want := "cpu: " + cpuinfo.Model() + ", kernels: " + set; !strings.Contains(md, want) {
			t.Errorf("markdown output lacks %q:\n%s", want, md)
		}
	}
	if _, _, err := runEngineCmd(t, "bench", model, "-p", "8", "-n", "0", "--kernels", "neon"); err == nil ||
		!strings.Contains(err.Error(), "--kernels") || !strings.Contains(err.Error(), "purego") {
		t.Errorf("--kernels neon: err = %v, want a --kernels error listing the sets", err)
	}
}

func TestMeanSD(t *testing.T) {
	m, sd := meanSD([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	if m != 5 || sd < 2.138 || sd > 2.139 { // sample sd = sqrt(32/7)
		t.Errorf("meanSD = %g, %g", m, sd)
	}
	if _, sd := meanSD([]float64{3}); sd != 0 {
		t.Errorf("one sample has sd %g", sd)
	}
}

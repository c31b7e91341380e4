package e2e

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/internal/fixtures"
	"github.com/llqt/llqt/quant"
)

// newUserCase is one command line a new user (or a script written for
// llama.cpp's tools) runs, and what llqt must answer.
type newUserCase struct {
	name string
	args string // fields, with {tiny}, {edge}, {text}, {dir}, … replaced
	ok   bool   // exit status 0; otherwise non-zero with a one-line error
	// stdout and stderr must contain each of these; notStd* none of them.
	stdout, stderr       []string
	notStdout, notStderr []string
	// created must exist afterwards; absent must not (no half-written output).
	created, absent []string
}

// TestNewUserAndLlamaFlags runs the cases of issue 14 (a silent NaN, a
// context beyond training, generate with small contexts, an output
// directory, llama-quantize's argument form, thread counts, the type list,
// llama.cpp's short flags, invalid UTF-8) and each llama.cpp flag form llqt
// accepts, in order: later cases use files earlier ones wrote.
func TestNewUserAndLlamaFlags(t *testing.T) {
	requireBuilt(t)
	tiny := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	edge := fixtures.Path(t, "golden/edge-f32.gguf")
	text := fixtures.Path(t, "text/tinystories_eval.txt")
	dir := t.TempDir()
	// The input of "IN TYPE" is a link in dir, so that llama-quantize's
	// default output (ggml-model-TYPE.gguf beside IN) lands in dir.
	if err := os.Symlink(edge, filepath.Join(dir, "edge.gguf")); err != nil {
		t.Fatal(err)
	}
	must(t, os.Mkdir(filepath.Join(dir, "adir"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "prompt.txt"), []byte("Once upon a time\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "short.txt"), []byte("too short\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "badkey.gguf"), rawStringGGUF("bad\xffkey", "x"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "badval.gguf"), rawStringGGUF("general.name", "part\xe2\x82"), 0o644))
	vars := strings.NewReplacer("{tiny}", tiny, "{edge}", edge, "{text}", text, "{dir}", dir)

	// The presets whose block formats llqt does not implement yet: the
	// type list leaves them out and quantize refuses them by name. The set
	// shrinks as formats are added, so it is read, not written down.
	var missing []string
	for _, p := range quant.Presets() {
		if !p.Supported() {
			missing = append(missing, p.Name)
		}
	}

	// Small, fast settings for the tiny model.
	const ppl = "-f {text} -c 64 --chunks 2"
	const bench = "-p 8 -n 2 -r 1"
	cases := []newUserCase{
		// A silent NaN: the F16 KV cache overflows on edge-f32.gguf.
		{name: "nan perplexity is an error", args: "eval perplexity {edge} -f {text} -c 128 --chunks 2",
			stderr: []string{"layer 0, token position", "F16", "every later score NaN", "--kv-f32", "-ctk f32 -ctv f32"}, notStdout: []string{"NaN"}},
		{name: "kld base of the tiny model", args: "eval perplexity {tiny} -f {text} -c 128 --chunks 2 --kl-divergence-base {dir}/base.kld",
			ok: true, created: []string{"base.kld"}},
		{name: "nan kl-divergence is an error", args: "eval perplexity {edge} --kl-divergence-base {dir}/base.kld --kl-divergence",
			stderr: []string{"every later score NaN", "--kv-f32"}, notStdout: []string{"NaN"}},
		{name: "kv-f32 gives a finite perplexity", args: "eval perplexity {edge} -f {text} -c 128 --chunks 2 --kv-f32",
			ok: true, stdout: []string{"Final estimate: PPL = "}},
		{name: "-ctk f32 -ctv f32 as --kv-f32", args: "eval perplexity {edge} -f {text} -c 128 --chunks 2 -ctk f32 -ctv f32",
			ok: true, stdout: []string{"KV cache F32", "Final estimate: PPL = "}},
		{name: "kv-f32 kl-divergence", args: "eval perplexity {edge} --kl-divergence-base {dir}/base.kld --kl-divergence --kv-f32",
			ok: true, stdout: []string{"KL divergence"}},

		// Context beyond training: a warning, also in --json.
		{name: "-c beyond the training context warns", args: "eval perplexity {tiny} -f {text} -c 1024 --chunks 1 --json",
			ok: true, stdout: []string{`"warnings"`, "training context of 512"}, stderr: []string{"warning: -c 1024 is larger than the model's training context of 512"}},

		// generate and small contexts.
		{name: "generate -n 0 evaluates the prompt", args: "generate {tiny} -p hello -n 0",
			ok: true, stderr: []string{"stopped: prompt only (-n 0)", "t/s not measured"}},
		{name: "generate says the context is full", args: "generate {tiny} -p hello -c 8 -n 10 --temp 0",
			ok: true, stderr: []string{"-n 10 does not fit the context of 8", "stopped: the context of 8 is full"}},
		{name: "generate says -n was reached", args: "generate {tiny} -p hello -n 3 --temp 0",
			ok: true, stderr: []string{"stopped: -n 3 reached"}},
		{name: "generate -n -1 runs to a full context", args: "generate {tiny} -p hello -n -1 -c 16 --temp 0 --ignore-eos",
			ok: true, stderr: []string{"stopped: the context of 16 is full"}},
		{name: "generate prompt longer than -c", args: "generate {tiny} -p hello -c 2",
			stderr: []string{"the prompt is 2 tokens and the context (-c) 2"}},

		// Output is a directory.
		{name: "quantize into a directory", args: "quantize {edge} {dir}/adir Q4_0", stderr: []string{"adir: output is a directory"}},
		{name: "quantize into a directory with --force", args: "quantize {edge} {dir}/adir Q4_0 --force", stderr: []string{"adir: output is a directory"}},
		{name: "quantize into a missing folder", args: "quantize {edge} {dir}/nope/x.gguf Q4_0",
			stderr: []string{"the output folder", "does not exist"}, absent: []string{"nope"}},

		// llama-quantize's own forms.
		{name: "quantize IN TYPE", args: "quantize {dir}/edge.gguf Q4_K_M",
			ok: true, stderr: []string{"ggml-model-Q4_K_M.gguf"}, created: []string{"ggml-model-Q4_K_M.gguf"}},
		{name: "quantize IN OUT TYPE NTHREADS", args: "quantize {edge} {dir}/q8.gguf Q8_0 2", ok: true, created: []string{"q8.gguf"}},
		{name: "quantize IN TYPE NTHREADS", args: "quantize {dir}/edge.gguf q4_0 1", ok: true, created: []string{"ggml-model-Q4_0.gguf"}},
		{name: "quantize --override-kv", args: "quantize {edge} {dir}/kv.gguf Q8_0 --override-kv general.name=str:Renamed --override-kv x.n=int:7",
			ok: true, created: []string{"kv.gguf"}},
		{name: "inspect shows --override-kv", args: "inspect {dir}/kv.gguf", ok: true, stdout: []string{`"Renamed"`, "x.n", "int32  7"}},
		{name: "quantize --override-kv bad type", args: "quantize {edge} {dir}/kv2.gguf Q8_0 --override-kv x=u8:1",
			stderr: []string{"--override-kv", "not int, float, bool or str"}, absent: []string{"kv2.gguf"}},
		{name: "quantize --include-weights needs --imatrix", args: "quantize {edge} {dir}/iw.gguf Q4_K_M --include-weights attn",
			stderr: []string{"--imatrix"}, absent: []string{"iw.gguf"}},
		{name: "quantize --include and --exclude", args: "quantize {edge} {dir}/iw.gguf Q4_K_M --imatrix x --include-weights a --exclude-weights b",
			stderr: []string{"cannot be used together"}, absent: []string{"iw.gguf"}},

		// Thread counts.
		{name: "-t 0 is every CPU", args: "quantize {edge} {dir}/t0.gguf Q8_0 --dry-run -t 0", ok: true},
		{name: "-t -3 is refused", args: "quantize {edge} {dir}/t.gguf Q8_0 -t -3", stderr: []string{"-t -3", "0 (one per CPU) or more"}, absent: []string{"t.gguf"}},
		{name: "-t 500 warns", args: "quantize {edge} {dir}/t500.gguf Q8_0 --dry-run -t 500", ok: true, stderr: []string{"warning: -t 500 is more threads than"}},
		{name: "--help says what -t 0 means", args: "eval perplexity --help", ok: true, stdout: []string{"0: one per CPU", "Examples:"}},

		// The type list names only what is implemented.
		{name: "unknown type lists supported types", args: "quantize {edge} {dir}/x.gguf Q9_9",
			stderr: []string{`unknown quantization type "Q9_9"`, "supported: ", "Q4_K_M"}, notStderr: missing},

		// llama.cpp's short flags.
		{name: "-ngl 99 is a note", args: "eval perplexity -m {tiny} " + ppl + " -ngl 99", ok: true,
			stderr: []string{"note: -ngl/--n-gpu-layers ignored"}, stdout: []string{"Final estimate"}},
		{name: "-fa is not -f a", args: "eval perplexity {tiny} " + ppl + " -fa", ok: true, stderr: []string{"note: -fa/--flash-attn ignored"}},
		{name: "--no-mmap is a note", args: "generate {tiny} -p hi -n 1 --no-mmap", ok: true, stderr: []string{"note: --no-mmap ignored"}},
		{name: "-m for inspect", args: "inspect -m {tiny}", ok: true, stdout: []string{"tensors"}},
		{name: "-m for tokenize", args: "tokenize -m {tiny} -p hello --ids", ok: true, stdout: []string{"[1, "}},
		{name: "-m and MODEL both", args: "tokenize -m {tiny} {tiny} -p hello", stderr: []string{"-m", "want 0 more argument"}},

		// Invalid UTF-8.
		{name: "a key that is not UTF-8", args: "inspect {dir}/badkey.gguf", stderr: []string{`metadata[1] key "bad\xffkey"`, "at offset", "not valid UTF-8"}},
		{name: "quantize refuses it too", args: "quantize {dir}/badkey.gguf {dir}/bk.gguf Q8_0", stderr: []string{"not valid UTF-8"}, absent: []string{"bk.gguf"}},
		{name: "a value that is not UTF-8 is shown escaped", args: "inspect {dir}/badval.gguf", ok: true, stdout: []string{`"part\xe2\x82"`}},

		// llama-perplexity's forms.
		{name: "perplexity --ppl-stride", args: "eval perplexity {tiny} " + ppl + " --ppl-stride 32", ok: true,
			stdout: []string{"--ppl-stride 32", "n_ctx 80", "Final estimate"}},
		{name: "perplexity --ppl-output-type 1", args: "eval perplexity {tiny} " + ppl + " --ppl-output-type 1", ok: true,
			stdout: []string{"       0  ", "      64  "}},
		{name: "perplexity -c 0 is the training context", args: "eval perplexity {tiny} -f {text} -c 0 --chunks 1", ok: true,
			stdout: []string{"n_ctx 512,"}, notStderr: []string{"warning"}},
		{name: "perplexity -b -ub", args: "eval perplexity {tiny} " + ppl + " -b 64 -ub 16", ok: true, stdout: []string{"n_batch 64"}},
		{name: "llqt perplexity as llama-perplexity", args: "perplexity -m {tiny} " + ppl + " -t 1", ok: true, stdout: []string{"Final estimate"}},
		{name: "-ctk q8_0", args: "eval perplexity {tiny} " + ppl + " -ctk q8_0", stderr: []string{"-ctk q8_0", "f16 or f32"}},
		{name: "-ctk and -ctv differ", args: "eval perplexity {tiny} " + ppl + " -ctk f32", stderr: []string{"give both"}},
		{name: "--ppl-output-type 2", args: "eval perplexity {tiny} " + ppl + " --ppl-output-type 2", stderr: []string{"want 0 or 1"}},

		// llama-bench's forms.
		{name: "bench -pg", args: "bench {tiny} -p 0 -n 0 -pg 8,2 -r 1", ok: true, stdout: []string{"pp8+tg2"}},
		{name: "bench lists and two -m", args: "bench -m {tiny} -m {tiny} -p 4,8 -n 2 -t 1,2 -r 1", ok: true,
			stdout: []string{"pp4", "pp8", "tg2", "|       1 |", "|       2 |"}},
		{name: "bench -o json", args: "bench {tiny} " + bench + " -o json", ok: true, stdout: []string{`"avg_ts"`, `"samples_ns"`}},
		{name: "bench -o jsonl", args: "bench {tiny} " + bench + " -o jsonl", ok: true, stdout: []string{`{"build_commit"`}},
		{name: "bench -o csv", args: "bench {tiny} " + bench + " -o csv", ok: true, stdout: []string{"build_commit,", `"8","0"`}},
		{name: "bench -o sql", args: "bench {tiny} " + bench + " -o sql", stderr: []string{"want md, json, jsonl or csv"}},
		{name: "bench -ngl -fa -mmp", args: "bench {tiny} " + bench + " -ngl 99 -fa 1 -mmp 0", ok: true,
			stderr: []string{"note: -ngl", "note: -fa", "note: -mmp"}},
		{name: "bench -pg malformed", args: "bench {tiny} -pg 8", stderr: []string{`-pg "8"`}},

		// llama-cli's forms.
		{name: "generate llama-cli flags", args: "generate -m {tiny} -f {dir}/prompt.txt -n 4 -s 7 --repeat-penalty 1.1 --repeat-last-n 16 --min-p 0.05 --ignore-eos",
			ok: true, stdout: []string{"Once upon a time"}, stderr: []string{"seed 7"}},
		{name: "generate -p and -f", args: "generate {tiny} -p hi -f {dir}/prompt.txt", stderr: []string{"-p and -f"}},
		{name: "generate --top-p 2", args: "generate {tiny} -p hi --top-p 2", stderr: []string{"--top-p 2"}},

		// Further new-user mistakes.
		{name: "no model", args: "generate -p hi", stderr: []string{"no model"}},
		{name: "no text", args: "eval perplexity {tiny}", stderr: []string{"no text: give -f TEXT"}},
		{name: "text too short", args: "eval perplexity {tiny} -f {dir}/short.txt", stderr: []string{"text too short"}},
		{name: "text and model swapped", args: "eval perplexity {text} -f {tiny}", stderr: []string{"not a GGUF file"}},
		{name: "text is a directory", args: "eval perplexity {tiny} -f {dir}", stderr: []string{"is a directory"}},
		{name: "kld base into a missing folder", args: "eval perplexity {tiny} " + ppl + " --kl-divergence-base {dir}/no/b.kld",
			stderr: []string{"does not exist"}},
		{name: "kld base exists", args: "eval perplexity {tiny} " + ppl + " --kl-divergence-base {dir}/base.kld",
			stderr: []string{"--kl-divergence to compare"}},
		{name: "quantize without a type", args: "quantize {edge} {dir}/nt.gguf", stderr: []string{"no quantization type"}, absent: []string{"nt.gguf"}},
		{name: "quantize over its input", args: "quantize {edge} {edge} Q8_0", stderr: []string{"output is the input"}},
		{name: "quantize a typo", args: "quantize {edge} {dir}/ty.gguf q4km", stderr: []string{`"q4km"`}},
		{name: "quantize -o is not a flag", args: "quantize {edge} -o {dir}/o.gguf Q4_0", stderr: []string{"unknown shorthand flag: 'o'"}},
		{name: "bench -p abc", args: "bench {tiny} -p abc", stderr: []string{`invalid argument "abc"`, "--n-prompt"}},
		{name: "bench -r 0", args: "bench {tiny} -r 0", stderr: []string{"-r 0"}},
		{name: "tokenize without text", args: "tokenize {tiny}", stderr: []string{"-p TEXT, -f FILE or --stdin"}},
		{name: "convert a file", args: "convert {tiny} {dir}/c.gguf", stderr: []string{"Hugging Face model directory"}, absent: []string{"c.gguf"}},
		{name: "generate -n -5", args: "generate {tiny} -p hi -n -5", stderr: []string{"-n -5"}},
		{name: "perplexity -c 2", args: "eval perplexity {tiny} -f {text} -c 2", stderr: []string{"-c 2 is too small"}},
		{name: "missing model file", args: "generate {dir}/none.gguf -p hi", stderr: []string{"none.gguf", "no such file"}},
	}
	if len(missing) > 0 {
		cases = append(cases, newUserCase{name: "unimplemented type", args: "quantize {edge} {dir}/x.gguf " + missing[0],
			stderr: []string{missing[0] + " needs block formats llqt does not implement"}, absent: []string{"x.gguf"}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := strings.Fields(vars.Replace(tc.args))
			r := run(t, llqtBin, args...)
			if tc.ok != (r.code == 0) {
				t.Fatalf("exit %d, want ok=%v\n%v\nstdout: %.2000s", r.code, tc.ok, r, r.stdout)
			}
			if !tc.ok {
				// One line that says what is wrong, after any notes.
				var errs []string
				for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
					if strings.HasPrefix(l, "llqt: ") {
						errs = append(errs, l)
					}
				}
				if len(errs) != 1 || !strings.HasSuffix(strings.TrimSpace(r.stderr), errs[0]) {
					t.Errorf("want one closing error line, got stderr %q", r.stderr)
				}
			} else {
				for _, bad := range []string{"NaN", "+Inf", "-Inf"} {
					if strings.Contains(r.stdout, bad) {
						t.Errorf("stdout holds %s:\n%.2000s", bad, r.stdout)
					}
				}
			}
			check := func(what, got string, want []string, present bool) {
				for _, w := range want {
					if strings.Contains(got, vars.Replace(w)) != present {
						t.Errorf("%s contains %q: %v, want %v\n%s", what, w, !present, present, got)
					}
				}
			}
			check("stdout", r.stdout, tc.stdout, true)
			check("stderr", r.stderr, tc.stderr, true)
			check("stdout", r.stdout, tc.notStdout, false)
			check("stderr", r.stderr, tc.notStderr, false)
			for _, f := range tc.created {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("%s was not written: %v", f, err)
				}
			}
			for _, f := range tc.absent {
				if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
					t.Errorf("%s exists after a failed run", f)
				}
			}
			if !tc.ok {
				leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
				if len(leftovers) > 0 {
					t.Errorf("temporary files left: %v", leftovers)
				}
			}
		})
	}
}

// rawStringGGUF is a GGUF v3 file with general.architecture and one more
// string entry, written byte by byte so that it can hold what llqt's
// writer would refuse.
func rawStringGGUF(key, value string) []byte {
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	str := func(s string) { w(uint64(len(s))); b.WriteString(s) }
	w(uint32(0x46554747))
	w(uint32(3))
	w(uint64(0)) // tensors
	w(uint64(2)) // metadata
	str("general.architecture")
	w(uint32(8))
	str("llama")
	str(key)
	w(uint32(8))
	str(value)
	return b.Bytes()
}

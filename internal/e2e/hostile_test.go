package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// validGGUF writes a small valid model and returns its path and bytes.
func validGGUF(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	p := writeSynthLlama(t, dir)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

func TestInspectGoodFile(t *testing.T) {
	requireCommand(t, "inspect")
	path, _ := validGGUF(t, t.TempDir())
	snap := snapshot(t, path)
	r := run(t, llqtBin, "inspect", "--verify", "--hash", path)
	checkSane(t, r)
	if r.code != 0 || !strings.Contains(r.stdout, "verify: OK") || !strings.Contains(r.stdout, "token_embd.weight") {
		t.Fatalf("inspect of a valid file: %v\nstdout: %s", r, r.stdout)
	}
	r = run(t, llqtBin, "inspect", "--json", "--hash", path)
	var rep struct {
		Tensors []struct{ Name, SHA256 string }
		Summary struct{ Tensors int }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Summary.Tensors != len(rep.Tensors) ||
		len(rep.Tensors) == 0 || len(rep.Tensors[0].SHA256) != 64 {
		t.Errorf("--json: %v (%+v)\n%s", err, rep.Summary, r.stdout[:min(len(r.stdout), 500)])
	}
	checkUnchanged(t, snap, "inspect")
}

// TestInspectHostileFiles: every lying file gives a clear error naming it,
// never a panic or a large allocation, and --verify lists its problems.
func TestInspectHostileFiles(t *testing.T) {
	requireCommand(t, "inspect")
	dir := t.TempDir()
	_, valid := validGGUF(t, t.TempDir())
	mustFail, mayFail := hostileGGUFs(t, dir, valid, 25)
	snap := snapshot(t, dir)
	for _, p := range mustFail {
		r := run(t, llqtBin, "inspect", p)
		checkFailed(t, r)
		if !strings.Contains(r.stderr, p) || !strings.Contains(r.stderr, "malformed GGUF") {
			t.Errorf("error does not name the file and the problem: %v", r)
		}
		r = run(t, llqtBin, "inspect", "--verify", p)
		checkFailed(t, r)
		if !strings.Contains(r.stdout, "verify: ") || strings.Contains(r.stdout, "verify: OK") {
			t.Errorf("--verify did not list problems: %v\nstdout: %s", r, r.stdout)
		}
	}
	for _, p := range mayFail {
		for _, args := range [][]string{{"inspect", "--hash", p}, {"inspect", "--verify", "--json", p}} {
			r := run(t, llqtBin, args...)
			checkSane(t, r)
			if r.code != 0 && !strings.Contains(r.stderr, "llqt:") {
				t.Errorf("failed without a message: %v", r)
			}
		}
	}
	checkUnchanged(t, snap, "inspect")
}

// TestQuantizeHostileFiles: quantize rejects lying inputs cleanly and
// leaves nothing at its output path.
func TestQuantizeHostileFiles(t *testing.T) {
	requireCommand(t, "quantize")
	dir := t.TempDir()
	_, valid := validGGUF(t, t.TempDir())
	mustFail, mayFail := hostileGGUFs(t, dir, valid, 8)
	snap := snapshot(t, dir)
	outDir := t.TempDir()
	for i, p := range append(mustFail, mayFail...) {
		out := filepath.Join(outDir, "out.gguf")
		r := run(t, llqtBin, "quantize", p, out, "Q8_0")
		if i < len(mustFail) {
			checkFailed(t, r)
		} else {
			checkSane(t, r)
		}
		if r.code != 0 && exists(out) {
			t.Errorf("failed run left %s: %v", out, r)
		}
		if left := tempFiles(t, out); len(left) > 0 {
			t.Errorf("temporary files left: %v (%v)", left, r)
		}
		os.Remove(out)
	}
	checkUnchanged(t, snap, "quantize")
}

// TestEvalHostileFiles: the engine refuses lying models cleanly.
func TestEvalHostileFiles(t *testing.T) {
	requireCommand(t, "eval", "perplexity")
	dir := t.TempDir()
	_, valid := validGGUF(t, t.TempDir())
	mustFail, mayFail := hostileGGUFs(t, dir, valid, 6)
	text := filepath.Join(t.TempDir(), "text.txt")
	must(t, os.WriteFile(text, []byte(strings.Repeat("Once upon a time there was a little cat.\n", 10)), 0o644))
	snap := snapshot(t, dir, text)
	for i, p := range append(mustFail, mayFail...) {
		r := run(t, llqtBin, "eval", "perplexity", p, "-f", text)
		if i < len(mustFail) {
			checkFailed(t, r)
		} else {
			checkSane(t, r)
		}
	}
	checkUnchanged(t, snap, "eval perplexity")
}

// TestConvertHostileCheckpoints: convert rejects lying safetensors cleanly
// and leaves nothing at its output path.
func TestConvertHostileCheckpoints(t *testing.T) {
	requireCommand(t, "convert")
	dir := t.TempDir()
	dirs := hostileHFDirs(t, dir)
	snap := snapshot(t, dir)
	outDir := t.TempDir()
	for _, d := range dirs {
		out := filepath.Join(outDir, "out.gguf")
		r := run(t, llqtBin, "convert", d, out, "--outtype", "f32")
		checkFailed(t, r)
		if !strings.Contains(r.stderr, "malformed safetensors") {
			t.Errorf("the error is not the safetensors reader's: %v", r)
		}
		if exists(out) || len(tempFiles(t, out)) > 0 {
			t.Errorf("failed convert left output: %v %v", entries(t, outDir), r)
		}
		os.Remove(out)
		// quantize takes an HF directory too, converting on the fly.
		r = run(t, llqtBin, "quantize", d, out, "Q8_0")
		checkFailed(t, r)
		if exists(out) || len(tempFiles(t, out)) > 0 {
			t.Errorf("failed quantize left output: %v %v", entries(t, outDir), r)
		}
		os.Remove(out)
		for _, args := range [][]string{{"inspect", d}, {"inspect", "--verify", filepath.Join(d, "model.safetensors")}} {
			r := run(t, llqtBin, args...)
			checkFailed(t, r)
		}
	}
	checkUnchanged(t, snap, "convert, quantize and inspect")
}

// TestNonRegularInputs: a FIFO or a device given as a model is refused at
// once; opening a FIFO would block every command forever.
func TestNonRegularInputs(t *testing.T) {
	requireBuilt(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe.gguf")
	if out, err := exec.Command("mkfifo", fifo).CombinedOutput(); err != nil {
		t.Skipf("mkfifo: %v %s", err, out)
	}
	hf := filepath.Join(dir, "hf")
	must(t, os.MkdirAll(hf, 0o755))
	must(t, os.WriteFile(filepath.Join(hf, "config.json"), []byte(`{"architectures":["LlamaForCausalLM"]}`), 0o644))
	if out, err := exec.Command("mkfifo", filepath.Join(hf, "model.safetensors")).CombinedOutput(); err != nil {
		t.Skipf("mkfifo: %v %s", err, out)
	}
	out := filepath.Join(t.TempDir(), "out.gguf")
	runs := [][]string{{"inspect", fifo}, {"inspect", "/dev/zero"}, {"inspect", hf}, {"inspect", filepath.Join(hf, "model.safetensors")}}
	if _, err := exec.Command(llqtBin, "quantize", "--help").CombinedOutput(); err == nil {
		runs = append(runs, []string{"quantize", fifo, out, "Q8_0"}, []string{"quantize", "/dev/zero", out, "Q8_0"})
	}
	if _, err := exec.Command(llqtBin, "convert", "--help").CombinedOutput(); err == nil {
		runs = append(runs, []string{"convert", hf, out})
	}
	for _, args := range runs {
		r := runWithin(t, 10*time.Second, llqtBin, args...)
		checkFailed(t, r)
		if exists(out) {
			t.Errorf("output written: %v", r)
		}
	}
	checkFailed(t, runWithin(t, 10*time.Second, loaderBin, fifo))
}

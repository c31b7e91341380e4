package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llqt/llqt/formats/safetensors"
	"github.com/llqt/llqt/internal/cli"
	"github.com/llqt/llqt/internal/fixtures"
	"github.com/llqt/llqt/internal/synth"
)

// convertCmd runs `llqt convert ARGS…` in-process.
func convertCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var o, e bytes.Buffer
	root.SetOut(&o)
	root.SetErr(&e)
	root.SetArgs(append([]string{"convert"}, args...))
	err = root.Execute()
	return o.String(), e.String(), err
}

func filesEqual(t *testing.T, got, want string) {
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
		t.Errorf("%s differs from %s (%d vs %d bytes)", got, want, len(a), len(b))
	}
}

// TestConvertGolden: every --outtype reproduces llama.cpp's file byte for
// byte, from the sharded checkpoint and from a single-file copy.
func TestConvertGolden(t *testing.T) {
	src := fixtures.Path(t, "tiny-llama-hf")
	single := filepath.Join(t.TempDir(), "tiny-llama-hf")
	if err := os.Mkdir(single, 0o755); err != nil {
		t.Fatal(err)
	}
	mergeCheckpoint(t, src, single)
	for label, dir := range map[string]string{"sharded": src, "single": single} {
		for _, ot := range []string{"f32", "f16", "bf16", "q8_0"} {
			t.Run(label+"/"+ot, func(t *testing.T) {
				golden := fixtures.Path(t, "golden/tiny-llama-"+ot+".gguf")
				out := filepath.Join(t.TempDir(), "out.gguf")
				if _, _, err := convertCmd(t, dir, out, "--outtype", ot, "-t", "2"); err != nil {
					t.Fatal(err)
				}
				filesEqual(t, out, golden)
			})
		}
	}
}

func mergeCheckpoint(t *testing.T, src, dst string) {
	t.Helper()
	c, err := safetensors.OpenDir(src)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ws []safetensors.WriteTensor
	for _, x := range c.Tensors {
		b, err := x.ReadRaw()
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, safetensors.WriteTensor{Name: x.Name, DType: x.DType, Shape: x.Shape, Data: b})
	}
	if err := safetensors.WriteFile(filepath.Join(dst, "model.safetensors"), ws, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".safetensors") || e.Name() == safetensors.IndexName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func synthDir(t *testing.T, o synth.Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "synth")
	if err := synth.Write(dir, o); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestConvertJSONAndForce(t *testing.T) {
	dir := synthDir(t, synth.Tiny())
	out := filepath.Join(t.TempDir(), "m.gguf")
	stdout, _, err := convertCmd(t, dir, out, "--outtype", "q8_0", "--json", "-t", "2")
	if err != nil {
		t.Fatal(err)
	}
	var sum convertSummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("--json output %q: %v", stdout, err)
	}
	st, _ := os.Stat(out)
	if sum.OutType != "q8_0" || sum.Tensors != 21 || sum.OutputBytes != st.Size() || sum.InputBytes == 0 || sum.Arch != "LlamaForCausalLM" {
		t.Errorf("summary %+v", sum)
	}
	first, _ := os.ReadFile(out)

	// An existing output needs --force, and is left alone without it.
	_, _, err = convertCmd(t, dir, out, "--outtype", "f32")
	if err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("existing output: %v", err)
	}
	if now, _ := os.ReadFile(out); !bytes.Equal(now, first) {
		t.Error("output changed without --force")
	}
	stdout, _, err = convertCmd(t, dir, out, "--outtype", "f32", "--force")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "21 tensors") || !strings.Contains(stdout, "MB/s") {
		t.Errorf("summary %q", stdout)
	}
	if now, _ := os.ReadFile(out); bytes.Equal(now, first) {
		t.Error("--force did not overwrite")
	}
}

// TestConvertBadInputWritesNothing: every failure leaves the output
// directory empty (no file, no temporary).
func TestConvertBadInputWritesNothing(t *testing.T) {
	cases := []struct {
		name string
		edit func(dir string)
		args []string
		want string
	}{
		{"missing config", func(d string) { os.Remove(filepath.Join(d, "config.json")) }, nil, "config.json"},
		{"invalid config", func(d string) { os.WriteFile(filepath.Join(d, "config.json"), []byte(`{"architectures": [`), 0o644) }, nil, "config.json"},
		{"config vs shapes", func(d string) {
			b, _ := os.ReadFile(filepath.Join(d, "config.json"))
			os.WriteFile(filepath.Join(d, "config.json"), bytes.Replace(b, []byte(`"intermediate_size": 160`), []byte(`"intermediate_size": 128`), 1), 0o644)
		}, nil, "intermediate_size 128"},
		{"truncated shard", func(d string) {
			p := filepath.Join(d, "model-00002-of-00002.safetensors")
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()/2)
		}, nil, "model-00002-of-00002.safetensors"},
		{"missing shard", func(d string) { os.Remove(filepath.Join(d, "model-00001-of-00002.safetensors")) }, nil, "missing shard model-00001-of-00002.safetensors"},
		{"bad outtype", func(string) {}, []string{"--outtype", "q4_k"}, "q4_k"},
		{"not a directory", nil, nil, "directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := synth.Tiny()
			o.Shards = 2
			dir := synthDir(t, o)
			if tc.edit != nil {
				tc.edit(dir)
			} else {
				dir = filepath.Join(dir, "config.json")
			}
			outDir := t.TempDir()
			_, _, err := convertCmd(t, append([]string{dir, filepath.Join(outDir, "m.gguf")}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want mention of %q", err, tc.want)
			}
			if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
				t.Errorf("output directory has %d entries after a failure", len(ents))
			}
		})
	}
}

func TestConvertRefusesInputFile(t *testing.T) {
	dir := synthDir(t, synth.Tiny())
	before, _ := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	_, _, err := convertCmd(t, dir, filepath.Join(dir, "model.safetensors"), "--force")
	if err == nil || !strings.Contains(err.Error(), "input directory") {
		t.Errorf("error %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "model.safetensors")); !bytes.Equal(before, after) {
		t.Error("input modified")
	}
}

// TestConvertSubprocess is the child of TestConvertInterrupted: it runs
// llqt with the arguments in $LLQT_CONVERT_CHILD.
func TestConvertSubprocess(t *testing.T) {
	args := os.Getenv("LLQT_CONVERT_CHILD")
	if args == "" {
		t.Skip("helper process for TestConvertInterrupted")
	}
	root := newRootCmd()
	root.SetArgs(strings.Split(args, "\x1f"))
	err := root.Execute()
	os.Exit(cli.Code(err) * boolInt(err != nil))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestConvertInterrupted: SIGINT and SIGTERM during the write exit 130 and
// 143 and leave no output and no temporary file.
func TestConvertInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 100 MB checkpoint")
	}
	o := synth.Tiny()
	o.Hidden, o.Intermediate, o.Layers, o.Heads, o.KVHeads, o.Vocab = 1024, 2816, 4, 8, 8, 8000
	dir := synthDir(t, o)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			outDir := t.TempDir()
			out := filepath.Join(outDir, "m.gguf")
			cmd := exec.Command(os.Args[0], "-test.run=^TestConvertSubprocess$")
			cmd.Env = append(os.Environ(), "LLQT_CONVERT_CHILD="+strings.Join([]string{"convert", dir, out, "--outtype", "q8_0", "-t", "1"}, "\x1f"))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Signal once the temporary output exists, i.e. mid-write.
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				if m, _ := filepath.Glob(filepath.Join(outDir, ".m.gguf.llqt-tmp-*")); len(m) > 0 {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			var ee *exec.ExitError
			if err == nil {
				t.Skip("conversion finished before the signal arrived")
			}
			if !errors.As(err, &ee) {
				t.Fatal(err)
			}
			want := map[syscall.Signal]int{syscall.SIGINT: 130, syscall.SIGTERM: 143}[sig]
			if ee.ExitCode() != want {
				t.Errorf("exit code %d, want %d; stderr: %s", ee.ExitCode(), want, stderr.String())
			}
			if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
				t.Errorf("%d entries left in the output directory", len(ents))
			}
		})
	}
}

func TestConvertCheckSpace(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.gguf")
	if err := checkSpace(out, 1); err != nil {
		t.Errorf("1 byte: %v", err)
	}
	if _, ok := freeSpace(filepath.Dir(out)); !ok {
		t.Skip("free space unknown on this platform")
	}
	err := checkSpace(out, 1<<62)
	if err == nil || !strings.Contains(err.Error(), "not enough space") || !strings.Contains(err.Error(), out) {
		t.Errorf("4 EiB: %v", err)
	}
}

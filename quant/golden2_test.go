package quant

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/fixtures"
)

// golden2Run is one llama-quantize run recorded in golden2's quantize.json or
// edge.json.
type golden2Run struct {
	Command string `json:"command"`
	RC      int    `json:"rc"`
	Output  string `json:"output"`
	Imatrix string `json:"imatrix"`
	Kept    string `json:"kept"`
	SHA256  string `json:"sha256"`
	// Refusal holds llama-quantize's error lines when it refused (rc 1);
	// Retry the run made instead (for the edge runs, with
	// --token-embedding-type q8_0).
	Refusal []string    `json:"refusal"`
	Retry   *golden2Run `json:"retry"`
	Name    string      `json:"name"`
}

// golden2Runs reads the runs of one golden2 JSON file, sorted by name.
func golden2Runs(t *testing.T, file string) ([]string, map[string]golden2Run) {
	t.Helper()
	raw, err := os.ReadFile(fixtures.Path(t, filepath.Join("golden2", file)))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs map[string]golden2Run `json:"runs"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	names := make([]string, 0, len(doc.Runs))
	for n := range doc.Runs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, doc.Runs
}

// golden2Command is what a recorded llama-quantize command asks for.
type golden2Command struct {
	input, preset      string
	pure               bool
	imatrix            string
	tokenEmbeddingType string
}

var quantizeArgs = regexp.MustCompile(`\S+`)

// parseGolden2Command reads "llama-quantize [flags] IN OUT TYPE NTHREADS".
func parseGolden2Command(t *testing.T, cmd string) golden2Command {
	t.Helper()
	args := quantizeArgs.FindAllString(cmd, -1)
	var c golden2Command
	var pos []string
	for i := 1; i < len(args); i++ {
		switch args[i] {
		case "--pure":
			c.pure = true
		case "--imatrix":
			i++
			c.imatrix = args[i]
		case "--token-embedding-type":
			i++
			c.tokenEmbeddingType = args[i]
		default:
			if strings.HasPrefix(args[i], "--") {
				t.Fatalf("command %q: flag %s not understood by this test", cmd, args[i])
			}
			pos = append(pos, args[i])
		}
	}
	if len(pos) < 3 {
		t.Fatalf("command %q: want IN OUT TYPE", cmd)
	}
	c.input, c.preset = pos[0], pos[2]
	return c
}

// golden2Expected returns the expected tensors of a run (from its full file
// or its manifest) and the full file's path when it is kept.
func golden2Expected(t *testing.T, run golden2Run) ([]goldenTensor, string) {
	t.Helper()
	dir := filepath.Join(fixtures.Dir(), "golden2")
	switch run.Kept {
	case "full":
		full := filepath.Join(dir, run.Output)
		return tensorsOfFile(t, full), full
	case "manifest":
		manifest := filepath.Join(dir, strings.TrimSuffix(run.Output, ".gguf")+".hashes.json")
		raw, err := os.ReadFile(manifest)
		if err != nil {
			t.Fatal(err)
		}
		return readManifest(t, raw), ""
	}
	return nil, ""
}

// TestQuantizeGolden2 replays every llama-quantize run of golden2 that b4748
// completed (with and without an imatrix, the --pure edge runs and their
// retries included) and compares the whole file where golden2 keeps it,
// else every tensor's type, shape and hash. Runs b4748 refused for a
// missing importance matrix must be refused too. Runs whose block formats
// llqt cannot encode yet are skipped with their name.
func TestQuantizeGolden2(t *testing.T) {
	if testing.Short() {
		t.Skip("quantizes about 60 files; skipped in -short")
	}
	for _, file := range []string{"quantize.json", "edge.json"} {
		names, runs := golden2Runs(t, file)
		for _, name := range names {
			run := runs[name]
			prefix := strings.TrimSuffix(file, ".json") + "/"
			if run.RC != 0 && len(run.Refusal) > 0 && strings.Contains(strings.Join(run.Refusal, " "), "importance matrix") {
				t.Run(prefix+name+"/refused", func(t *testing.T) { golden2Refusal(t, name, run) })
			}
			if run.RC != 0 && run.Retry != nil {
				name, run = run.Retry.Name, *run.Retry
			}
			if run.RC != 0 || (run.Kept != "full" && run.Kept != "manifest") {
				continue
			}
			t.Run(prefix+name, func(t *testing.T) {
				if _, ok := iq1StaleShiftTensors[run.Output]; ok {
					t.Skipf("%s: llama-quantize's bytes depend on uninitialized memory in two tensors (see iq1StaleShiftTensors); TestIQ1Golden2Tensors checks its IQ1 tensors", name)
				}
				want, full := golden2Expected(t, run)
				for _, g := range want {
					typ, err := ggml.ParseType(g.Type)
					if err != nil {
						t.Fatal(err)
					}
					if typ.Quantized() && !CanQuantize(typ) {
						t.Skipf("%s: llqt cannot encode %s yet", name, typ)
					}
				}
				c, opts := golden2Options(t, run)
				// The commands name the input relative to golden2/.
				got := quantizeFile(t, filepath.Clean(filepath.Join("golden2", c.input)), opts)
				compareWithGolden(t, got, want, full)
			})
		}
	}
}

// golden2Options turns a recorded command into Options.
func golden2Options(t *testing.T, run golden2Run) (golden2Command, Options) {
	t.Helper()
	c := parseGolden2Command(t, run.Command)
	opts := Options{Preset: mustPreset(t, c.preset), Pure: c.pure, Threads: 2}
	if c.tokenEmbeddingType != "" {
		te, err := ggml.ParseType(c.tokenEmbeddingType)
		if err != nil {
			t.Fatal(err)
		}
		opts.TokenEmbeddingType = &te
	}
	if c.imatrix != "" {
		im, err := ReadImatrix(filepath.Join(fixtures.Dir(), "golden2", c.imatrix))
		if err != nil {
			t.Fatal(err)
		}
		opts.Imatrix, opts.ImatrixFile, opts.ImatrixDataset = im.Weights, c.imatrix, im.Dataset
		opts.ImatrixChunks = int(max(im.Chunks, 0))
	}
	return c, opts
}

// golden2Refusal checks that llqt refuses, as b4748 did, a run whose
// very-low-bit blocks lack an importance matrix (without one at all, or
// for a tensor the matrix has no entry for).
func golden2Refusal(t *testing.T, name string, run golden2Run) {
	c, opts := golden2Options(t, run)
	if !opts.Preset.Supported() {
		t.Skipf("%s: llqt cannot encode %s's types yet", name, opts.Preset.Name)
	}
	m := openModel(t, filepath.Clean(filepath.Join("golden2", c.input)))
	out, _, err := Plan(m, opts)
	if err == nil {
		err = gguf.WriteFile(context.Background(), filepath.Join(t.TempDir(), "out.gguf"), out, gguf.WriteOptions{Threads: 2})
	}
	if err == nil || !strings.Contains(err.Error(), "importance matrix") {
		t.Errorf("%s: got %v; llama-quantize refused: %s", name, err, run.Refusal[0])
	}
}

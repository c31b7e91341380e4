package quant

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats/ggml"
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
		dec := json.NewDecoder(bytes.NewReader(raw))
		if _, err := dec.Token(); err != nil {
			t.Fatal(err)
		}
		var out []goldenTensor
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			var g goldenTensor
			if err := dec.Decode(&g); err != nil {
				t.Fatal(err)
			}
			g.Name = tok.(string)
			out = append(out, g)
		}
		return out, ""
	}
	return nil, ""
}

// TestQuantizeGolden2 replays every llama-quantize run of golden2 that b4748
// completed (with and without an imatrix, the --pure edge runs included)
// and compares the whole file where golden2 keeps it, else every tensor's
// type, shape and hash. Runs whose block formats llqt cannot encode yet are
// skipped with their name.
func TestQuantizeGolden2(t *testing.T) {
	if testing.Short() {
		t.Skip("quantizes about 60 files; skipped in -short")
	}
	for _, file := range []string{"quantize.json", "edge.json"} {
		names, runs := golden2Runs(t, file)
		for _, name := range names {
			run := runs[name]
			if run.RC != 0 || (run.Kept != "full" && run.Kept != "manifest") {
				continue
			}
			t.Run(strings.TrimSuffix(file, ".json")+"/"+name, func(t *testing.T) {
				c := parseGolden2Command(t, run.Command)
				preset := mustPreset(t, c.preset)
				opts := Options{Preset: preset, Pure: c.pure, Threads: 2}
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
				// The commands name the input relative to golden2/.
				in := filepath.Clean(filepath.Join("golden2", c.input))
				got := quantizeFile(t, in, opts)
				compareWithGolden(t, got, want, full)
			})
		}
	}
}

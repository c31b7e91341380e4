package quant

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/fixtures"
)

// goldenTensor is one tensor of a llama-quantize output.
type goldenTensor struct {
	Name   string
	Type   string
	Shape  []uint64
	SHA256 string
}

// goldenPresets are the presets with a full file or a manifest in golden/.
var goldenPresets = []string{"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L",
	"Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"}

// edgePresets have an edge-P.gguf made with --pure.
var edgePresets = []string{"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"}

// loadGolden returns the expected tensors for preset on tiny-llama, in
// file order, and the path of the full golden file when there is one.
func loadGolden(t *testing.T, prefix, preset string) ([]goldenTensor, string) {
	t.Helper()
	dir := fixtures.Dir()
	if dir == "" {
		fixtures.Path(t, "golden") // skips
	}
	full := filepath.Join(dir, "golden", prefix+"-"+preset+".gguf")
	if _, err := os.Stat(full); err == nil {
		return tensorsOfFile(t, full), full
	}
	manifest := filepath.Join(dir, "golden", prefix+"-"+preset+".hashes.json")
	raw, err := os.ReadFile(manifest)
	if err != nil {
		t.Skipf("no golden for %s-%s: %v", prefix, preset, err)
	}
	return readManifest(t, raw), ""
}

// readManifest reads a hash manifest ({"name": {type, shape, sha256}, …})
// token by token, to keep its tensor order.
func readManifest(t *testing.T, raw []byte) []goldenTensor {
	t.Helper()
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
	return out
}

func tensorsOfFile(t *testing.T, path string) []goldenTensor {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []goldenTensor
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		data, err := f.Data(ti)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		out = append(out, goldenTensor{Name: ti.Name, Type: ti.Type.String(), Shape: ti.Shape, SHA256: hex.EncodeToString(sum[:])})
	}
	return out
}

// logDecisions reads llama-quantize's log: tensor names in order with the
// type each was converted to (or kept as).
func logDecisions(t *testing.T, path string) [][2]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("no log: %v", err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^\[\s*\d+/\s*\d+\]\s+(\S+) - \[[^\]]*\], type =\s+(\S+), (?:converting to (\S+) \.\.)?`)
	var out [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		typ := m[2]
		if m[3] != "" {
			typ = m[3]
		}
		out = append(out, [2]string{m[1], strings.ToUpper(typ)})
	}
	return out
}

func openModel(t *testing.T, rel string) *formats.Model {
	t.Helper()
	f, err := gguf.Open(fixtures.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f.Model()
}

func mustPreset(t testing.TB, name string) Preset {
	t.Helper()
	p, err := ParsePreset(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMixDecisionsGolden checks the per-tensor types, shapes and order
// against llama-quantize's outputs and logs, without encoding anything.
func TestMixDecisionsGolden(t *testing.T) {
	for _, preset := range goldenPresets {
		t.Run(preset, func(t *testing.T) {
			m := openModel(t, "golden/tiny-llama-f32.gguf")
			_, decisions, err := Plan(m, Options{Preset: mustPreset(t, preset)})
			if err != nil {
				t.Fatal(err)
			}
			want, _ := loadGolden(t, "tiny-llama", preset)
			if len(want) != len(decisions) {
				t.Fatalf("%d tensors, want %d", len(decisions), len(want))
			}
			for i, d := range decisions {
				w := want[i]
				if d.Name != w.Name || d.To.String() != w.Type || fmt.Sprint(d.Shape) != fmt.Sprint(w.Shape) {
					t.Errorf("tensor %d: %s %s %v (%s), want %s %s %v", i, d.Name, d.To, d.Shape, d.Reason, w.Name, w.Type, w.Shape)
				}
			}
			logged := logDecisions(t, filepath.Join(fixtures.Dir(), "golden", "quantize-"+preset+".log"))
			if len(logged) != len(decisions) {
				t.Fatalf("log has %d tensors, plan %d", len(logged), len(decisions))
			}
			for i, d := range decisions {
				if logged[i][0] != d.Name || !strings.EqualFold(logged[i][1], d.To.String()) {
					t.Errorf("tensor %d: %s → %s, log says %s → %s", i, d.Name, d.To, logged[i][0], logged[i][1])
				}
			}
		})
	}
}

// quantizeFile runs Plan and writes the result, returning the output path.
func quantizeFile(t *testing.T, in string, opts Options) string {
	t.Helper()
	m := openModel(t, in)
	out, _, err := Plan(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "out.gguf")
	if err := gguf.WriteFile(context.Background(), path, out, gguf.WriteOptions{Threads: opts.Threads}); err != nil {
		t.Fatal(err)
	}
	return path
}

func compareWithGolden(t *testing.T, got string, want []goldenTensor, full string) {
	t.Helper()
	if full != "" {
		a, err := os.ReadFile(got)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(full)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a, b) {
			return
		}
		t.Errorf("output (%d bytes) differs from %s (%d bytes)", len(a), filepath.Base(full), len(b))
		compareMetadata(t, got, full)
	}
	gotTensors := tensorsOfFile(t, got)
	if len(gotTensors) != len(want) {
		t.Fatalf("%d tensors, want %d", len(gotTensors), len(want))
	}
	for i, g := range gotTensors {
		w := want[i]
		if g.Name != w.Name || g.Type != w.Type || fmt.Sprint(g.Shape) != fmt.Sprint(w.Shape) || g.SHA256 != w.SHA256 {
			t.Errorf("tensor %d: %s %s %v %.12s…, want %s %s %v %.12s…", i, g.Name, g.Type, g.Shape, g.SHA256, w.Name, w.Type, w.Shape, w.SHA256)
		}
	}
}

func compareMetadata(t *testing.T, got, want string) {
	t.Helper()
	a, err := gguf.Open(got)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := gguf.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if len(a.KV) != len(b.KV) {
		t.Errorf("%d metadata keys, want %d", len(a.KV), len(b.KV))
	}
	for i := range min(len(a.KV), len(b.KV)) {
		if a.KV[i].Key != b.KV[i].Key || fmt.Sprintf("%T %v", a.KV[i].Value, a.KV[i].Value) != fmt.Sprintf("%T %v", b.KV[i].Value, b.KV[i].Value) {
			t.Errorf("metadata %d: %s = %.60v, want %s = %.60v", i, a.KV[i].Key, a.KV[i].Value, b.KV[i].Key, b.KV[i].Value)
		}
	}
}

// TestQuantizeGolden quantizes tiny-llama-f32 with every preset that has a
// golden and compares every byte (full files) or every tensor's hash.
func TestQuantizeGolden(t *testing.T) {
	for _, preset := range goldenPresets {
		t.Run(preset, func(t *testing.T) {
			want, full := loadGolden(t, "tiny-llama", preset)
			got := quantizeFile(t, "golden/tiny-llama-f32.gguf", Options{Preset: mustPreset(t, preset), Threads: 2})
			compareWithGolden(t, got, want, full)
		})
	}
}

// TestQuantizeEdgePure checks each block format alone on hard inputs.
func TestQuantizeEdgePure(t *testing.T) {
	for _, preset := range edgePresets {
		t.Run(preset, func(t *testing.T) {
			want, full := loadGolden(t, "edge", preset)
			got := quantizeFile(t, "golden/edge-f32.gguf", Options{Preset: mustPreset(t, preset), Pure: true, Threads: 2})
			compareWithGolden(t, got, want, full)
		})
	}
}

// TestQuantizeGoldenThreads: the bytes do not depend on the thread count.
func TestQuantizeGoldenThreads(t *testing.T) {
	want, full := loadGolden(t, "tiny-llama", "Q4_K_M")
	for _, threads := range []int{1, 2, 8} {
		t.Run(fmt.Sprint(threads), func(t *testing.T) {
			got := quantizeFile(t, "golden/tiny-llama-f32.gguf", Options{Preset: mustPreset(t, "Q4_K_M"), Threads: threads})
			compareWithGolden(t, got, want, full)
		})
	}
}

// TestPureDecisionsEdge: with --pure every matrix takes the default type.
func TestPureDecisionsEdge(t *testing.T) {
	for _, preset := range edgePresets {
		want, _ := loadGolden(t, "edge", preset)
		m := openModel(t, "golden/edge-f32.gguf")
		_, ds, err := Plan(m, Options{Preset: mustPreset(t, preset), Pure: true})
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range ds {
			if d.Name != want[i].Name || d.To.String() != want[i].Type {
				t.Errorf("%s: tensor %d %s → %s, want %s → %s", preset, i, d.Name, d.To, want[i].Name, want[i].Type)
			}
		}
	}
}

var _ = ggml.TypeF32

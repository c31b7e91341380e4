package convert

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/fixtures"
	"github.com/llqt/llqt/quant"
)

// archGolden converts arch/NAME/hf with every output type llama.cpp b4748
// was run with: f32 and q8_0 must equal golden-*.gguf byte for byte, f16
// and bf16 every tensor of the hash manifests. Each checkpoint sits in a
// folder named hf, which is where the converter's general.name ("Hf")
// comes from, so converting it in place reproduces the whole file.
func archGolden(t *testing.T, arch string) {
	t.Helper()
	dir := fixtures.Path(t, "arch/"+arch+"/hf")
	for _, ot := range []string{"f32", "q8_0"} {
		t.Run(ot, func(t *testing.T) {
			golden := fixtures.Path(t, "arch/"+arch+"/golden-"+ot+".gguf")
			out := convertTo(t, dir, ot, quant.Codec{})
			compareGGUF(t, out, golden)
			sameBytes(t, out, golden)
		})
	}
	for _, ot := range []string{"f16", "bf16"} {
		t.Run(ot, func(t *testing.T) {
			manifest := fixtures.Path(t, filepath.Join("arch", arch, "golden-"+ot+".hashes.json"))
			checkManifest(t, convertTo(t, dir, ot, nil), manifest)
		})
	}
}

type manifestEntry struct {
	Name   string
	Type   string   `json:"type"`
	Shape  []uint64 `json:"shape"`
	SHA256 string   `json:"sha256"`
}

// readManifest reads a hash manifest keeping its tensor order.
func readManifest(t *testing.T, path string) []manifestEntry {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var out []manifestEntry
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var e manifestEntry
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		e.Name = tok.(string)
		out = append(out, e)
	}
	return out
}

// checkManifest compares every tensor of a GGUF with a hash manifest.
func checkManifest(t *testing.T, gotPath, manifest string) {
	t.Helper()
	want := readManifest(t, manifest)
	f, err := gguf.Open(gotPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Tensors) != len(want) {
		t.Fatalf("%d tensors, manifest has %d", len(f.Tensors), len(want))
	}
	for i := range f.Tensors {
		g, w := &f.Tensors[i], want[i]
		data, err := f.Data(g)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		h := hex.EncodeToString(sum[:])
		if g.Name != w.Name || g.Type.String() != w.Type || fmt.Sprint(g.Shape) != fmt.Sprint(w.Shape) || h != w.SHA256 {
			t.Errorf("tensor %d: %s %s %v %.12s…, want %s %s %v %.12s…", i, g.Name, g.Type, g.Shape, h, w.Name, w.Type, w.Shape, w.SHA256)
		}
	}
}

// TestGoldenTinyLlamaBin converts the PyTorch .bin copy of the tiny model:
// the metadata (but the naming keys, which come from the folder name) and
// every tensor's name, type, shape and bytes equal llama.cpp's conversion
// of the safetensors copy. The tensors come in the pickle's order, as
// llama.cpp's converter emits them.
func TestGoldenTinyLlamaBin(t *testing.T) {
	out := convertTo(t, fixtures.Path(t, "tiny-llama-bin"), "f32", nil)
	golden := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	got, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	want, err := gguf.Open(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	var gk, wk []string
	for _, kv := range got.KV {
		if !namingKeys[kv.Key] {
			gk = append(gk, fmt.Sprintf("%s=%v", kv.Key, kv.Value))
		}
	}
	for _, kv := range want.KV {
		if !namingKeys[kv.Key] {
			wk = append(wk, fmt.Sprintf("%s=%v", kv.Key, kv.Value))
		}
	}
	if fmt.Sprint(gk) != fmt.Sprint(wk) {
		t.Errorf("metadata differs:\n got %.300v\nwant %.300v", gk, wk)
	}
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	for i := range got.Tensors {
		g := &got.Tensors[i]
		w, ok := want.Tensor(g.Name)
		if !ok {
			t.Errorf("tensor %s not in the golden", g.Name)
			continue
		}
		gd, _ := got.Data(g)
		wd, _ := want.Data(w)
		if g.Type != w.Type || fmt.Sprint(g.Shape) != fmt.Sprint(w.Shape) || !bytes.Equal(gd, wd) {
			t.Errorf("tensor %s: %s %v differs from the golden's %s %v", g.Name, g.Type, g.Shape, w.Type, w.Shape)
		}
	}
}

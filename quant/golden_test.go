package quant

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/internal/fixtures"
)

// firstMismatch describes where two encodings of rows of ne0 elements first
// differ, by row and block.
func firstMismatch(t ggml.Type, got, want []byte, ne0 int) string {
	if len(got) != len(want) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	rs, _ := RowSize(t, ne0)
	ts := t.TypeSize()
	nbad := 0
	first := -1
	for off := 0; off < len(got); off += ts {
		if !bytes.Equal(got[off:off+ts], want[off:off+ts]) {
			if first < 0 {
				first = off
			}
			nbad++
		}
	}
	if first < 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d blocks differ; first: row %d block %d\n got  %x\n want %x",
		nbad, len(got)/ts, first/rs, first%rs/ts, got[first:first+ts], want[first:first+ts])
}

var edgeGoldens = []string{"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"}

// TestGoldenEdge quantizes every matrix of edge-f32.gguf with the type
// llama-quantize --pure chose and compares the bytes with its output.
func TestGoldenEdge(t *testing.T) {
	src, err := readTestGGUF(fixtures.Path(t, "golden/edge-f32.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, preset := range edgeGoldens {
		t.Run(preset, func(t *testing.T) {
			gold, err := readTestGGUF(fixtures.Path(t, "golden/edge-"+preset+".gguf"))
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			for _, gt := range gold.tensors {
				st := src.byName[gt.name]
				if st == nil {
					t.Errorf("%s: not in edge-f32", gt.name)
					continue
				}
				if st.typ != ggml.TypeF32 {
					t.Fatalf("%s: source type %s", gt.name, st.typ)
				}
				if gt.typ == ggml.TypeF32 {
					if !bytes.Equal(gt.data, st.data) {
						t.Errorf("%s: F32 tensor changed", gt.name)
					}
					continue
				}
				ne0 := int(gt.shape[0])
				got, err := Quantize(gt.typ, st.float32s(), ne0, nil)
				if err != nil {
					t.Errorf("%s (%s): %v", gt.name, gt.typ, err)
					continue
				}
				if d := firstMismatch(gt.typ, got, gt.data, ne0); d != "" {
					t.Errorf("%s (%s %v): %s", gt.name, gt.typ, gt.shape, d)
				}
				checked++
			}
			if checked == 0 {
				t.Fatal("no quantized tensor compared")
			}
		})
	}
}

type hashEntry struct {
	Type   string   `json:"type"`
	Shape  []uint64 `json:"shape"`
	SHA256 string   `json:"sha256"`
}

var tinyPresets = []string{"Q6_K", "Q4_K_M", "Q4_0", "Q2_K", "IQ4_XS", // full files
	"Q8_0", "Q4_1", "Q5_0", "Q5_1", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q5_K_S", "Q5_K_M", "IQ4_NL"} // manifests

// TestGoldenTinyLlama quantizes every tensor of tiny-llama-f32.gguf with the
// type each llama-quantize preset used for it and checks bytes (full golden
// files) or sha256 (manifests).
func TestGoldenTinyLlama(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the edge goldens cover every format")
	}
	src, err := readTestGGUF(fixtures.Path(t, "golden/tiny-llama-f32.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	dir := fixtures.Dir()
	for _, preset := range tinyPresets {
		t.Run(preset, func(t *testing.T) {
			want := map[string]hashEntry{}
			var gold *testGGUF
			if _, err := os.Stat(dir + "/golden/tiny-llama-" + preset + ".gguf"); err == nil {
				gold, err = readTestGGUF(dir + "/golden/tiny-llama-" + preset + ".gguf")
				if err != nil {
					t.Fatal(err)
				}
				for _, gt := range gold.tensors {
					sum := sha256.Sum256(gt.data)
					want[gt.name] = hashEntry{Type: gt.typ.String(), Shape: gt.shape, SHA256: hex.EncodeToString(sum[:])}
				}
			} else {
				raw, err := os.ReadFile(fixtures.Path(t, "golden/tiny-llama-"+preset+".hashes.json"))
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(raw, &want); err != nil {
					t.Fatal(err)
				}
			}
			checked := 0
			for name, w := range want {
				st := src.byName[name]
				if st == nil {
					t.Errorf("%s: not in tiny-llama-f32", name)
					continue
				}
				typ, err := ggml.ParseType(w.Type)
				if err != nil {
					t.Fatal(err)
				}
				if typ == ggml.TypeF32 {
					continue
				}
				ne0 := int(st.shape[0])
				got, err := Quantize(typ, st.float32s(), ne0, nil)
				if err != nil {
					t.Errorf("%s (%s): %v", name, typ, err)
					continue
				}
				sum := sha256.Sum256(got)
				if hex.EncodeToString(sum[:]) != w.SHA256 {
					msg := "sha256 differs"
					if gold != nil {
						msg = firstMismatch(typ, got, gold.byName[name].data, ne0)
					}
					t.Errorf("%s (%s %v): %s", name, typ, st.shape, msg)
				}
				checked++
			}
			if checked == 0 {
				t.Fatal("no quantized tensor compared")
			}
		})
	}
}

package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/llqt/llqt/internal/fixtures"
)

// TestConvertLoraGolden: convert-lora writes the bytes of b4748's
// convert_lora_to_gguf.py --base tiny-llama-hf --outtype T for every T
// (golden2/lora-T.gguf; all four are the same F32 file).
func TestConvertLoraGolden(t *testing.T) {
	adapter := fixtures.Path(t, "golden2/tiny-llama-lora")
	base := fixtures.Path(t, "tiny-llama-hf")
	var g struct {
		Convert map[string]struct {
			SHA256 string `json:"sha256"`
		} `json:"convert"`
	}
	b, err := os.ReadFile(fixtures.Path(t, "golden2/lora.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, typ := range []string{"f32", "f16", "bf16", "q8_0"} {
		want, ok := g.Convert[typ]
		if !ok {
			t.Fatalf("lora.json has no %s conversion", typ)
		}
		out := filepath.Join(dir, "lora-"+typ+".gguf")
		if _, _, err := runLLQT(t, "convert-lora", "--base", base, "--outtype", typ, adapter, out); err != nil {
			t.Fatal(err)
		}
		if got := sha256File(t, out); got != want.SHA256 {
			t.Errorf("--outtype %s: sha256 %s, convert_lora_to_gguf.py wrote %s", typ, got, want.SHA256)
		}
	}
	if _, _, err := runLLQT(t, "convert-lora", adapter, filepath.Join(dir, "x.gguf")); err == nil {
		t.Error("convert-lora without --base succeeded")
	}
}

// TestMergeLoraGolden: merge-lora writes llama-export-lora's files byte
// for byte: golden2/lora.json's f32 and f16 merges, and a scaled adapter on
// a Q4_K_M base (dequantized, F16 out) from testdata/merge-lora.json.
func TestMergeLoraGolden(t *testing.T) {
	var g struct {
		ExportLora map[string]struct {
			SHA256 string `json:"sha256"`
		} `json:"export_lora"`
	}
	b, err := os.ReadFile(fixtures.Path(t, "golden2/lora.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	var local struct {
		Cases []struct {
			Base, Lora, Scale, SHA256 string
		} `json:"cases"`
	}
	b, err = os.ReadFile("testdata/merge-lora.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &local); err != nil {
		t.Fatal(err)
	}
	type run struct {
		args []string
		want string
	}
	var runs []run
	for _, typ := range []string{"f32", "f16"} {
		runs = append(runs, run{[]string{fixtures.Path(t, "golden/tiny-llama-"+typ+".gguf"), "--lora", fixtures.Path(t, "golden2/lora-"+typ+".gguf")},
			g.ExportLora[typ].SHA256})
	}
	for _, c := range local.Cases {
		runs = append(runs, run{[]string{fixtures.Path(t, c.Base), "--lora-scaled", fixtures.Path(t, c.Lora), c.Scale}, c.SHA256})
	}
	dir := t.TempDir()
	for i, r := range runs {
		out := filepath.Join(dir, "m"+string(rune('a'+i))+".gguf")
		args := append(append([]string{"merge-lora"}, r.args...), out, "-t", "2")
		if _, _, err := runLLQT(t, args...); err != nil {
			t.Fatalf("%v: %v", r.args, err)
		}
		if got := sha256File(t, out); got != r.want {
			t.Errorf("%v: sha256 %s, llama-export-lora wrote %s", r.args, got, r.want)
		}
	}
}

// TestLoraPerplexity: eval perplexity --lora/--lora-scaled against
// llama-perplexity b4748 with the same adapters on the first 20 chunks
// (testdata/lora-ppl.json), within 0.1%; the negative scale of the last
// case is written FILE,SCALE since "-0.5" alone would read as a flag.
func TestLoraPerplexity(t *testing.T) {
	var ref struct {
		Text   string `json:"text"`
		NCtx   int    `json:"n_ctx"`
		Chunks int    `json:"chunks"`
		Cases  []struct {
			Model    string   `json:"model"`
			LoraArgs []string `json:"lora_args"`
			PPL      float64  `json:"ppl"`
		} `json:"cases"`
	}
	b, err := os.ReadFile("testdata/lora-ppl.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	cases := ref.Cases
	if testing.Short() {
		cases = cases[:2]
	}
	for _, c := range cases {
		args := []string{"eval", "perplexity", fixtures.Path(t, c.Model), "-f", fixtures.Path(t, ref.Text),
			"-c", strconv.Itoa(ref.NCtx), "--chunks", strconv.Itoa(ref.Chunks), "-t", "2", "--json"}
		for i := 0; i < len(c.LoraArgs); i++ {
			a := c.LoraArgs[i]
			switch a {
			case "--lora":
				args = append(args, a, fixtures.Path(t, c.LoraArgs[i+1]))
				i++
			case "--lora-scaled":
				file, scale := fixtures.Path(t, c.LoraArgs[i+1]), c.LoraArgs[i+2]
				if strings.HasPrefix(scale, "-") {
					args = append(args, a, file+","+scale)
				} else {
					args = append(args, a, file, scale)
				}
				i += 2
			}
		}
		out, _, err := runLLQT(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", c.LoraArgs, err)
		}
		var res struct {
			PPL float64 `json:"ppl"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		if rel := math.Abs(res.PPL-c.PPL) / c.PPL; rel > 1e-3 {
			t.Errorf("%s %v: PPL %.4f, llama-perplexity %.4f (%.2e relative)", c.Model, c.LoraArgs, res.PPL, c.PPL, rel)
		} else {
			t.Logf("%s %v: PPL %.4f, llama-perplexity %.4f", filepath.Base(c.Model), c.LoraArgs, res.PPL, c.PPL)
		}
	}
}

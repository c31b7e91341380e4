package convert_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/llqt/llqt/convert"
	"github.com/llqt/llqt/eval/tokenizer"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/fixtures"
)

// copyTokenizerDir copies a hf-tokenizers folder's three input files into
// a temporary folder named name (general.name comes from it), replacing
// tokenizer.json by tj when given.
func copyTokenizerDir(t *testing.T, src, name string, tj []byte) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "tokenizer.json" && tj != nil {
			b = tj
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func vocabOnly(t *testing.T, dir string, opt convert.Options) []byte {
	t.Helper()
	opt.VocabOnly = true
	res, err := convert.Convert(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	out := filepath.Join(t.TempDir(), "vocab.gguf")
	if err := gguf.WriteFile(context.Background(), out, res.Model, gguf.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// spliceLlamaBPE rebuilds Meta's later Llama 3 tokenizer.json: the shipped
// file with the value of its top-level "post_processor" replaced
// (hf-tokenizers/README.md).
func spliceLlamaBPE(t *testing.T, dir string) []byte {
	t.Helper()
	tj, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	pp, err := os.ReadFile(filepath.Join(dir, "post_processor.llama-bpe.json"))
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("\n  \"post_processor\": ")
	i := bytes.Index(tj, key)
	if i < 0 {
		t.Fatal("no post_processor key")
	}
	start := i + len(key)
	dec := json.NewDecoder(bytes.NewReader(tj[start:]))
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	end := start + int(dec.InputOffset())
	out := append([]byte(nil), tj[:start]...)
	out = append(out, bytes.TrimSuffix(pp, []byte("\n"))...)
	return append(out, tj[end:]...)
}

// TestVocabOnlyGolden: --vocab-only on the real Llama 3 and Qwen3
// tokenizers reproduces b4748's vocab GGUFs byte for byte, the
// pre-tokenizer detected by chkhsh (smaug-bpe, qwen2, and llama-bpe for
// Llama 3 with Meta's later post-processor).
func TestVocabOnlyGolden(t *testing.T) {
	base := fixtures.Path(t, "hf-tokenizers")
	var manifest struct {
		Tokenizers map[string]struct {
			VocabSHA256 string `json:"vocab_gguf_sha256"`
			Variant     struct {
				SHA256 string `json:"vocab_gguf_sha256"`
			} `json:"variant_llama_bpe"`
		} `json:"tokenizers"`
	}
	raw, err := os.ReadFile(filepath.Join(base, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"llama3", "qwen3"} {
		t.Run(name, func(t *testing.T) {
			src := filepath.Join(base, name)
			got := vocabOnly(t, copyTokenizerDir(t, src, name, nil), convert.Options{Encoder: tokenizer.EncodeHF})
			want, err := os.ReadFile(filepath.Join(src, "vocab-"+name+".gguf"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("differs from vocab-%s.gguf (%d vs %d bytes)", name, len(got), len(want))
			}
			if h := sha256.Sum256(got); hex.EncodeToString(h[:]) != manifest.Tokenizers[name].VocabSHA256 {
				t.Errorf("sha256 %x, manifest %s", h, manifest.Tokenizers[name].VocabSHA256)
			}
		})
	}
	t.Run("llama3-llama-bpe", func(t *testing.T) {
		src := filepath.Join(base, "llama3")
		got := vocabOnly(t, copyTokenizerDir(t, src, "llama3", spliceLlamaBPE(t, src)), convert.Options{Encoder: tokenizer.EncodeHF})
		if h := sha256.Sum256(got); hex.EncodeToString(h[:]) != manifest.Tokenizers["llama3"].Variant.SHA256 {
			t.Errorf("sha256 %x, manifest %s", h, manifest.Tokenizers["llama3"].Variant.SHA256)
		}
		// With llama-bpe the engine gives HF's ids on llama.cpp's test
		// inputs, BOS in front with the default special tokens.
		path := filepath.Join(t.TempDir(), "vocab-llama-bpe.gguf")
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		tok, err := tokenizer.FromKV(f.KV)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			out        string
			addSpecial bool
		}{{"vocab-llama3.gguf.out", false}, {"vocab-llama3.gguf.addspecial.out", true}} {
			inputs, want := readTestCases(t, filepath.Join(src, "vocab-llama3.gguf.inp"), filepath.Join(src, c.out))
			for i, text := range inputs {
				ids, err := tok.Encode(text, c.addSpecial, false)
				if err != nil {
					t.Fatal(err)
				}
				w := want[i]
				if c.addSpecial {
					w = append([]int32{128000}, w...) // HF's post-processor BOS; the .out file is the shipped tokenizer's
				}
				if fmt.Sprint(ids) != fmt.Sprint(w) {
					t.Errorf("%s case %d %+q: %v, want %v", c.out, i, text, ids, w)
				}
			}
		}
	})
	t.Run("no encoder needs --pre", func(t *testing.T) {
		dir := copyTokenizerDir(t, filepath.Join(base, "qwen3"), "qwen3", nil)
		if _, err := convert.Convert(dir, convert.Options{VocabOnly: true}); err == nil || !strings.Contains(err.Error(), "--pre") {
			t.Errorf("error %v, want a pointer to --pre", err)
		}
		got := vocabOnly(t, dir, convert.Options{Pre: "qwen2"})
		want, _ := os.ReadFile(filepath.Join(base, "qwen3", "vocab-qwen3.gguf"))
		if !bytes.Equal(got, want) {
			t.Error("--pre qwen2 differs from vocab-qwen3.gguf")
		}
	})
}

// readTestCases reads llama.cpp's test-tokenizer-0 files: texts separated
// by "\n__ggml_vocab_test__\n", one line of ids per text.
func readTestCases(t *testing.T, inp, out string) ([]string, [][]int32) {
	t.Helper()
	raw, err := os.ReadFile(inp)
	if err != nil {
		t.Fatal(err)
	}
	outRaw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	inputs := strings.Split(strings.TrimSuffix(string(raw), "\n__ggml_vocab_test__\n"), "\n__ggml_vocab_test__\n")
	lines := strings.Split(strings.TrimSuffix(string(outRaw), "\n"), "\n")
	if len(lines) != len(inputs) {
		t.Fatalf("%s: %d inputs, %d lines", out, len(inputs), len(lines))
	}
	want := make([][]int32, len(lines))
	for i, l := range lines {
		want[i] = []int32{}
		for _, f := range strings.Fields(l) {
			v, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			want[i] = append(want[i], int32(v))
		}
	}
	return inputs, want
}

package tokenizer

import (
	"os"
	"testing"

	"github.com/llqt/llqt/internal/fixtures"
)

func loadHF(tb testing.TB, rel string) *Tokenizer {
	tb.Helper()
	path := fixtures.Path(tb, rel)
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := FromHFJSON(data, path)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// hfWhiteSpaceProbes are the probes (x NEL y, x BOM y) whose .out ids come
// from transformers.js, whose \s is not Unicode White_Space; HF's Rust
// library, like llama.cpp and this package, follows White_Space, so these
// are checked against llama.cpp's ids (hf-tokenizers/DIFFERENCES.md).
var hfWhiteSpaceProbes = map[int]bool{1: true, 2: true}

// TestHFTokenizerJSON: FromHFJSON tokenizes as Hugging Face does (the
// .out/.ids files), on llama.cpp's test inputs, the probes (NFC included)
// and two long texts, with and without the post-processor's tokens.
func TestHFTokenizerJSON(t *testing.T) {
	for _, name := range []string{"llama3", "qwen3"} {
		t.Run(name, func(t *testing.T) {
			dir := "hf-tokenizers/" + name + "/"
			tok := loadHF(t, dir+"tokenizer.json")
			sets := []struct {
				inp, out, llamacpp string
				addSpecial         bool
			}{
				{dir + "vocab-" + name + ".gguf.inp", dir + "vocab-" + name + ".gguf.out", "", false},
				{dir + "vocab-" + name + ".gguf.inp", dir + "vocab-" + name + ".gguf.addspecial.out", "", true},
				{"hf-tokenizers/probes.inp", dir + "probes.out", dir + "probes.llamacpp.out", false},
				{"hf-tokenizers/probes.inp", dir + "probes.addspecial.out", dir + "probes.llamacpp.addspecial.out", true},
			}
			for _, s := range sets {
				inputs, want := readCases(t, fixtures.Path(t, s.inp), fixtures.Path(t, s.out))
				var cpp [][]int32
				if s.llamacpp != "" {
					_, cpp = readCases(t, fixtures.Path(t, s.inp), fixtures.Path(t, s.llamacpp))
				}
				for i, text := range inputs {
					got, err := tok.Encode(text, s.addSpecial, true)
					if err != nil {
						t.Fatal(err)
					}
					w := want[i]
					if cpp != nil && hfWhiteSpaceProbes[i] {
						w = cpp[i]
					}
					if !equalIDs(got, w) {
						t.Errorf("%s case %d %+q: %s", s.out, i, text, firstMismatch(got, w))
					}
				}
			}
			for _, x := range []struct {
				ids, source string
				limit       int
			}{
				{dir + "tinystories_eval.ids", "text/tinystories_eval.txt", -1},
				{dir + "wiki.test.200k.ids", "text/wiki.test.raw", 204344},
			} {
				raw, err := os.ReadFile(fixtures.Path(t, x.source))
				if err != nil {
					t.Fatal(err)
				}
				if x.limit >= 0 {
					raw = raw[:x.limit]
				}
				got, err := tok.Encode(string(raw), false, true)
				if err != nil {
					t.Fatal(err)
				}
				if want := readIDList(t, fixtures.Path(t, x.ids)); !equalIDs(got, want) {
					t.Errorf("%s: %s", x.ids, firstMismatch(got, want))
				}
			}
		})
	}
}

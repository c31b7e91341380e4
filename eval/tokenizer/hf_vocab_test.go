package tokenizer

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/llqt/llqt/internal/fixtures"
)

// readIDList parses "[1, 2, 3]" as llama-tokenize --ids prints it.
func readIDList(tb testing.TB, path string) []int32 {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	s := strings.TrimSpace(string(raw))
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	var out []int32
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		out = append(out, int32(v))
	}
	return out
}

// TestHFTokenizerVocabs: the vocabularies b4748 converts from the real
// Llama 3 (smaug-bpe) and Qwen3 (qwen2) tokenizer.json files tokenize as
// llama.cpp does: the test inputs and probes with and without special
// tokens, and two long texts.
func TestHFTokenizerVocabs(t *testing.T) {
	for _, name := range []string{"llama3", "qwen3"} {
		t.Run(name, func(t *testing.T) {
			dir := "hf-tokenizers/" + name + "/"
			tok := loadGGUF(t, dir+"vocab-"+name+".gguf")
			sets := []struct {
				inp, out                 string
				addSpecial, parseSpecial bool
			}{
				{dir + "vocab-" + name + ".gguf.inp", dir + "vocab-" + name + ".gguf.llamacpp.out", false, false},
				{dir + "vocab-" + name + ".gguf.inp", dir + "vocab-" + name + ".gguf.llamacpp.addspecial.out", true, false},
				{"hf-tokenizers/probes.inp", dir + "probes.llamacpp.out", false, true},
				{"hf-tokenizers/probes.inp", dir + "probes.llamacpp.addspecial.out", true, true},
			}
			for _, s := range sets {
				inputs, want := readCases(t, fixtures.Path(t, s.inp), fixtures.Path(t, s.out))
				for i, text := range inputs {
					got, err := tok.Encode(text, s.addSpecial, s.parseSpecial)
					if err != nil {
						t.Fatal(err)
					}
					if !equalIDs(got, want[i]) {
						t.Errorf("%s case %d %q: %s", s.out, i, text, firstMismatch(got, want[i]))
					}
				}
			}
			texts := []struct {
				ids    string
				source string
				limit  int
			}{
				{dir + "tinystories_eval.llamacpp.ids", "text/tinystories_eval.txt", -1},
				{dir + "wiki.test.200k.llamacpp.ids", "text/wiki.test.raw", 204344},
			}
			for _, x := range texts {
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

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/fixtures"
)

// loadGGUF builds a tokenizer from a shared GGUF file.
func loadGGUF(tb testing.TB, rel string) *Tokenizer {
	tb.Helper()
	path := fixtures.Path(tb, rel)
	f, err := gguf.Open(path)
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	tok, err := FromKV(f.KV)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return tok
}

// readCases parses llama.cpp's test-tokenizer-0 files: .inp holds texts
// separated by "\n__ggml_vocab_test__\n", .out one line of ids per text.
func readCases(tb testing.TB, inpPath, outPath string) ([]string, [][]int32) {
	tb.Helper()
	raw, err := os.ReadFile(inpPath)
	if err != nil {
		tb.Fatal(err)
	}
	outRaw, err := os.ReadFile(outPath)
	if err != nil {
		tb.Fatal(err)
	}
	const sep = "\n__ggml_vocab_test__\n"
	var inputs []string
	for s := string(raw); s != ""; {
		i := strings.Index(s, sep)
		if i < 0 {
			inputs = append(inputs, s)
			break
		}
		inputs = append(inputs, s[:i])
		s = s[i+len(sep):]
	}
	lines := strings.Split(strings.TrimSuffix(string(outRaw), "\n"), "\n")
	if len(lines) != len(inputs) {
		tb.Fatalf("%s: %d inputs but %d output lines", inpPath, len(inputs), len(lines))
	}
	want := make([][]int32, len(lines))
	for i, line := range lines {
		for _, f := range strings.Fields(line) {
			v, err := strconv.ParseInt(f, 10, 32)
			if err != nil {
				tb.Fatalf("%s line %d: %v", outPath, i+1, err)
			}
			want[i] = append(want[i], int32(v))
		}
	}
	return inputs, want
}

// firstMismatch describes where got and want first differ, with context.
func firstMismatch(got, want []int32) string {
	n := min(len(got), len(want))
	i := 0
	for i < n && got[i] == want[i] {
		i++
	}
	if i == n && len(got) == len(want) {
		return ""
	}
	lo, hi := max(0, i-5), i+6
	return fmt.Sprintf("first difference at token %d of %d (want %d): got %v, want %v",
		i, len(got), len(want), got[lo:min(hi, len(got))], want[lo:min(hi, len(want))])
}

// TestVocabCases runs llama.cpp's test-tokenizer-0 cases (add_special and
// parse_special off) for every ggml-vocab-*.gguf with .inp/.out files in the
// shared vocab directory, and in $LLQT_EXTRA_VOCABS if set (for more of
// llama.cpp's models/ directory).
func TestVocabCases(t *testing.T) {
	dirs := []string{filepath.Dir(fixtures.Path(t, "vocab/ggml-vocab-llama-spm.gguf"))}
	if extra := os.Getenv("LLQT_EXTRA_VOCABS"); extra != "" {
		dirs = append(dirs, extra)
	}
	seen := 0
	for _, dir := range dirs {
		inps, _ := filepath.Glob(filepath.Join(dir, "ggml-vocab-*.gguf.inp"))
		for _, inp := range inps {
			base := strings.TrimSuffix(inp, ".inp")
			if _, err := os.Stat(base); err != nil {
				continue // cases without the vocabulary
			}
			seen++
			name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(base), "ggml-vocab-"), ".gguf")
			t.Run(name, func(t *testing.T) { checkVocabCases(t, base) })
		}
	}
	if seen == 0 {
		t.Skip("no vocabularies with test cases found")
	}
}

func checkVocabCases(t *testing.T, base string) {
	f, err := gguf.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := FromKV(f.KV)
	f.Close()
	if err != nil {
		t.Fatalf("%s: %v", base, err)
	}
	inputs, want := readCases(t, base+".inp", base+".out")
	failed := 0
	for i, in := range inputs {
		got, err := tok.Encode(in, false, false)
		if err != nil {
			t.Errorf("case %d %q: %v", i, in, err)
			continue
		}
		if d := firstMismatch(got, want[i]); d != "" {
			failed++
			t.Errorf("case %d %q: %s\n got  %v\n want %v", i, in, d, got, want[i])
		}
	}
	t.Logf("%s (%v, pre %q): %d/%d cases match", filepath.Base(base), tok.Kind(), tok.Pre(), len(inputs)-failed, len(inputs))
}

// parseIDList reads llama-tokenize --ids output: "[1, 2, 3]".
func parseIDList(tb testing.TB, path string) []int32 {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	s := strings.TrimSpace(string(raw))
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	var ids []int32
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		ids = append(ids, int32(v))
	}
	return ids
}

// TestGoldenTinyLlama matches `llama-tokenize -m tiny-llama-f32.gguf -f TEXT
// --ids --no-escape`: the file verbatim, BOS added, special tokens parsed.
func TestGoldenTinyLlama(t *testing.T) {
	tok := loadGGUF(t, "golden/tiny-llama-f32.gguf")
	for _, c := range []struct{ text, ids string }{
		{"text/tinystories_eval.txt", "golden/tokens-tinystories_eval.ids"},
		{"text/wiki.test.raw", "golden/tokens-wiki.ids"},
	} {
		t.Run(filepath.Base(c.text), func(t *testing.T) {
			if testing.Short() && strings.Contains(c.text, "wiki") {
				t.Skip("-short: the 1.3 MB wiki text is checked in the full run")
			}
			text, err := os.ReadFile(fixtures.Path(t, c.text))
			if err != nil {
				t.Fatal(err)
			}
			want := parseIDList(t, fixtures.Path(t, c.ids))
			got, err := tok.Encode(string(text), true, true)
			if err != nil {
				t.Fatal(err)
			}
			if d := firstMismatch(got, want); d != "" {
				t.Fatalf("%s: %s", c.text, d)
			}
			t.Logf("%s: %d tokens match", c.text, len(got))
			// llama-perplexity drops one trailing newline first: that removes
			// exactly the final <0x0A> token here
			trimmed, err := tok.Encode(strings.TrimSuffix(string(text), "\n"), true, true)
			if err != nil {
				t.Fatal(err)
			}
			if d := firstMismatch(trimmed, want[:len(want)-1]); d != "" || tok.Token(want[len(want)-1]) != "<0x0A>" {
				t.Errorf("without the trailing newline: %s (last token %q)", d, tok.Token(want[len(want)-1]))
			}
			// Without BOS the first piece loses its dummy space prefix.
			if back := tok.Decode(got[1:], false, false); back != string(text) {
				t.Errorf("decode does not round-trip (%d bytes back, %d in)", len(back), len(text))
			}
		})
	}
}

// BenchmarkEncodeWiki encodes the WikiText-2 test set with the tiny
// Llama's SentencePiece vocabulary, as llama-perplexity does.
func BenchmarkEncodeWiki(b *testing.B) {
	tok := loadGGUF(b, "golden/tiny-llama-f32.gguf")
	text, err := os.ReadFile(fixtures.Path(b, "text/wiki.test.raw"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := tok.Encode(string(text), true, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeWikiGPT2 encodes the same text with GPT-2's BPE.
func BenchmarkEncodeWikiGPT2(b *testing.B) {
	tok := loadGGUF(b, "vocab/ggml-vocab-gpt-2.gguf")
	text, err := os.ReadFile(fixtures.Path(b, "text/wiki.test.raw"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := tok.Encode(string(text), true, true); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReferencePrompts matches SentencePiece's own encoding of the
// reference prompts (BOS first) and llama-simple's rendering of the prompt
// pieces.
func TestReferencePrompts(t *testing.T) {
	tok := loadGGUF(t, "golden/tiny-llama-f32.gguf")
	raw, err := os.ReadFile(fixtures.Path(t, "reference/reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Prompts []struct {
			Prompt   string   `json:"prompt"`
			TokenIDs []int32  `json:"token_ids"`
			Pieces   []string `json:"pieces"`
		} `json:"prompts"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	for _, p := range ref.Prompts {
		got, err := tok.Encode(p.Prompt, true, false)
		if err != nil {
			t.Fatal(err)
		}
		if d := firstMismatch(got, p.TokenIDs); d != "" {
			t.Errorf("%q: %s", p.Prompt, d)
		}
		for i, id := range p.TokenIDs {
			if i < len(p.Pieces) && tok.Token(id) != p.Pieces[i] {
				t.Errorf("token %d text %q, want %q", id, tok.Token(id), p.Pieces[i])
			}
		}
	}

	raw, err = os.ReadFile(fixtures.Path(t, "golden/generate.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gen struct {
		Cases []struct {
			Prompt string `json:"prompt"`
			Output string `json:"output"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &gen); err != nil {
		t.Fatal(err)
	}
	for _, c := range gen.Cases {
		ids, err := tok.Encode(c.Prompt, true, true)
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		for _, id := range ids {
			sb.WriteString(tok.TokenToPiece(id, true))
		}
		if !strings.HasPrefix(c.Output, sb.String()) {
			t.Errorf("llama-simple printed %q, pieces of the prompt give %q", c.Output, sb.String())
		}
	}
}

// TestSPMRoundTrip decodes the encoded test cases of every SentencePiece
// vocabulary back to the input.
func TestSPMRoundTrip(t *testing.T) {
	dir := filepath.Dir(fixtures.Path(t, "vocab/ggml-vocab-llama-spm.gguf.inp"))
	inputs, _ := readCases(t, filepath.Join(dir, "ggml-vocab-llama-spm.gguf.inp"), filepath.Join(dir, "ggml-vocab-llama-spm.gguf.out"))
	for _, name := range []string{"llama-spm", "phi-3", "baichuan"} {
		tok := loadGGUF(t, "vocab/ggml-vocab-"+name+".gguf")
		for _, in := range inputs {
			ids, err := tok.Encode(in, false, false)
			if err != nil {
				t.Fatalf("%s: %q: %v", name, in, err)
			}
			if back := tok.Decode(ids, false, false); back != in {
				t.Errorf("%s: %q decodes to %q", name, in, back)
			}
		}
	}
}

// TestOtherVocabs loads the vocabularies without test cases and checks that
// they encode without error and that BPE pieces decode back.
func TestOtherVocabs(t *testing.T) {
	dir := filepath.Dir(fixtures.Path(t, "vocab/ggml-vocab-llama-spm.gguf.inp"))
	inputs, _ := readCases(t, filepath.Join(dir, "ggml-vocab-llama-spm.gguf.inp"), filepath.Join(dir, "ggml-vocab-llama-spm.gguf.out"))
	tok := loadGGUF(t, "vocab/ggml-vocab-gpt-neox.gguf")
	if tok.Kind() != BPE || tok.Pre() != "" || tok.BOS() != 0 {
		t.Errorf("gpt-neox: kind %v pre %q bos %d", tok.Kind(), tok.Pre(), tok.BOS())
	}
	for _, in := range inputs {
		ids, err := tok.Encode(in, false, false)
		if err != nil {
			t.Fatalf("gpt-neox: %q: %v", in, err)
		}
		var sb strings.Builder
		for _, id := range ids {
			sb.WriteString(tok.TokenToPiece(id, true))
		}
		if sb.String() != in && utf8.ValidString(in) {
			t.Errorf("gpt-neox: pieces of %q join to %q", in, sb.String())
		}
	}
}

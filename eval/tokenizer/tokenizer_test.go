package tokenizer

import (
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/llqt/llqt/formats"
)

// spmVocab builds a small SentencePiece-style vocabulary: <unk>, <s>, </s>,
// the 256 byte tokens, then the given pieces with their scores.
func spmVocab(pieces map[string]float32, extra ...formats.KV) formats.KVs {
	tokens := []string{"<unk>", "<s>", "</s>"}
	scores := []float32{0, 0, 0}
	types := []int32{typeUnknown, typeControl, typeControl}
	for b := 0; b < 256; b++ {
		tokens = append(tokens, fmt.Sprintf("<0x%02X>", b))
		scores = append(scores, 0)
		types = append(types, typeByte)
	}
	// deterministic order
	var names []string
	for p := range pieces {
		names = append(names, p)
	}
	sortStrings(names)
	for _, p := range names {
		tokens = append(tokens, p)
		scores = append(scores, pieces[p])
		types = append(types, typeNormal)
	}
	kv := formats.KVs{
		{Key: keyModel, Value: "llama"},
		{Key: keyTokens, Value: formats.Array{Elem: formats.ValString, Values: tokens}},
		{Key: keyScores, Value: formats.Array{Elem: formats.ValFloat32, Values: scores}},
		{Key: keyTypes, Value: formats.Array{Elem: formats.ValInt32, Values: types}},
		{Key: "tokenizer.ggml.bos_token_id", Value: uint32(1)},
		{Key: "tokenizer.ggml.eos_token_id", Value: uint32(2)},
		{Key: "tokenizer.ggml.unknown_token_id", Value: uint32(0)},
	}
	return append(kv, extra...)
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func mustTok(tb testing.TB, kv formats.KVs) *Tokenizer {
	tb.Helper()
	tok, err := FromKV(kv)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// pieces renders ids as their vocabulary texts, for readable failures.
func pieces(tok *Tokenizer, ids []int32) []string {
	var out []string
	for _, id := range ids {
		out = append(out, tok.Token(id))
	}
	return out
}

func TestSPMSynthetic(t *testing.T) {
	tok := mustTok(t, spmVocab(map[string]float32{
		"▁": -1, "a": -2, "b": -3, "c": -4, "ab": -0.5, "bc": -0.3, "▁a": -0.8, "abc": -0.1, "▁ab": -0.2,
		"aa": -1, "x": -5, "▁x": -0.4,
	}))
	cases := []struct {
		name                  string
		text                  string
		addSpecial, parseSpec bool
		want                  []string
	}{
		// bc (-0.3) beats ▁a (-0.8) and ab (-0.5); then abc (-0.1) absorbs a
		{"best score first", "abc", false, false, []string{"▁", "abc"}},
		// ▁x merges first, then two equal "aa" bigrams: the leftmost wins
		{"ties go left", "xaaa", false, false, []string{"▁x", "aa", "a"}},
		{"byte fallback", "é", false, false, []string{"▁", "<0xC3>", "<0xA9>"}},
		{"bos", "x", true, false, []string{"<s>", "▁x"}},
		{"empty", "", false, false, nil},
		{"empty with bos", "", true, false, []string{"<s>"}},
		{"specials as text", "<s>x", false, false, []string{"▁", "<0x3C>", "<0x73>", "<0x3E>", "x"}},
		// a parsed special is followed by a fresh dummy space prefix
		{"specials parsed", "<s>x</s>", false, true, []string{"<s>", "▁x", "</s>"}},
		{"spaces escaped", "a  x", false, false, []string{"▁a", "▁", "▁x"}},
		{"newline is a byte", "a\nx", false, false, []string{"▁a", "<0x0A>", "x"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ids, err := tok.Encode(c.text, c.addSpecial, c.parseSpec)
			if err != nil {
				t.Fatal(err)
			}
			if got := pieces(tok, ids); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Encode(%q) = %q, want %q", c.text, got, c.want)
			}
		})
	}
	if tok.Unknown() != 0 || tok.EOT() != NoToken || tok.Sep() != NoToken || tok.Pad() != NoToken || tok.Score(tok.ids["abc"]) != -0.1 {
		t.Errorf("SPM specials: unk %d eot %d sep %d pad %d", tok.Unknown(), tok.EOT(), tok.Sep(), tok.Pad())
	}
	if !tok.AddBOS() || tok.AddEOS() || tok.BOS() != 1 || tok.EOS() != 2 || !tok.IsEOG(2) || tok.IsEOG(1) {
		t.Errorf("SPM defaults: addBOS %v addEOS %v bos %d eos %d", tok.AddBOS(), tok.AddEOS(), tok.BOS(), tok.EOS())
	}
}

func TestSPMDefaultsAndFlags(t *testing.T) {
	// no bos/eos keys: llama.cpp's SPM defaults are 1 and 2
	kv := spmVocab(map[string]float32{"a": -1})
	kv.Delete("tokenizer.ggml.bos_token_id")
	kv.Delete("tokenizer.ggml.eos_token_id")
	kv.Set(keyAddPrefix, false)
	kv.Set(keyAddEOS, true)
	tok := mustTok(t, kv)
	ids, err := tok.Encode("a", true, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := pieces(tok, ids); !reflect.DeepEqual(got, []string{"<s>", "a", "</s>"}) {
		t.Fatalf("got %q", got)
	}
	// an out-of-range id keeps the default
	kv.Set("tokenizer.ggml.bos_token_id", uint32(1<<20))
	if tok := mustTok(t, kv); tok.BOS() != 1 {
		t.Errorf("bad bos id: BOS() = %d, want default 1", tok.BOS())
	}
}

func TestSPMByteFallbackMissing(t *testing.T) {
	kv := formats.KVs{
		{Key: keyModel, Value: "llama"},
		{Key: keyTokens, Value: formats.Array{Elem: formats.ValString, Values: []string{"<unk>", "<s>", "</s>", "▁"}}},
	}
	tok := mustTok(t, kv)
	if _, err := tok.Encode("é", false, false); err == nil {
		t.Fatal("want an error for a byte with no token")
	}
}

func TestFromKVErrors(t *testing.T) {
	good := spmVocab(map[string]float32{"a": -1})
	cases := map[string]func(kv *formats.KVs){
		"no model":      func(kv *formats.KVs) { kv.Delete(keyModel) },
		"unknown model": func(kv *formats.KVs) { kv.Set(keyModel, "t5x") },
		"no tokens":     func(kv *formats.KVs) { kv.Delete(keyTokens) },
		"tokens wrong type": func(kv *formats.KVs) {
			kv.Set(keyTokens, formats.Array{Elem: formats.ValInt32, Values: []int32{1}})
		},
		"scores short": func(kv *formats.KVs) {
			kv.Set(keyScores, formats.Array{Elem: formats.ValFloat32, Values: []float32{1}})
		},
		"duplicate token": func(kv *formats.KVs) {
			kv.Set(keyTokens, formats.Array{Elem: formats.ValString, Values: []string{"a", "a"}})
			kv.Delete(keyScores)
			kv.Delete(keyTypes)
		},
		"gpt2 without merges": func(kv *formats.KVs) { kv.Set(keyModel, "gpt2"); kv.Set(keyPre, "gpt-2") },
		"unknown pre": func(kv *formats.KVs) {
			kv.Set(keyModel, "gpt2")
			kv.Set(keyPre, "no-such-pre")
			kv.Set(keyMerges, formats.Array{Elem: formats.ValString, Values: []string{}})
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			kv := append(formats.KVs(nil), good...)
			mutate(&kv)
			if _, err := FromKV(kv); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

// bpeVocab builds a byte-level BPE vocabulary: the 256 byte symbols, the
// results of the merges, and extra tokens.
func bpeVocab(pre string, merges []string, extra ...string) formats.KVs {
	var tokens []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			tokens = append(tokens, s)
		}
	}
	for b := 0; b < 256; b++ {
		add(byteToUnicode[b])
	}
	for _, m := range merges {
		add(strings.Replace(m, " ", "", 1))
	}
	for _, e := range extra {
		add(e)
	}
	types := make([]int32, len(tokens))
	for i := range types {
		types[i] = typeNormal
	}
	for i, tk := range tokens {
		if strings.HasPrefix(tk, "<|") {
			types[i] = typeControl
		}
	}
	return formats.KVs{
		{Key: keyModel, Value: "gpt2"},
		{Key: keyPre, Value: pre},
		{Key: keyTokens, Value: formats.Array{Elem: formats.ValString, Values: tokens}},
		{Key: keyTypes, Value: formats.Array{Elem: formats.ValInt32, Values: types}},
		{Key: keyMerges, Value: formats.Array{Elem: formats.ValString, Values: merges}},
	}
}

func TestBPESynthetic(t *testing.T) {
	merges := []string{"Ġ t", "h e", "Ġt he", "l l", "Ġ w", "o r"}
	kv := bpeVocab("gpt-2", merges, "<|endoftext|>")
	tok := mustTok(t, kv)
	cases := []struct {
		text         string
		parseSpecial bool
		want         []string
	}{
		{" the", false, []string{"Ġthe"}},
		{"the", false, []string{"t", "he"}},
		{"the world", false, []string{"t", "he", "Ġw", "or", "l", "d"}},
		{"hello<|endoftext|>", true, []string{"he", "ll", "o", "<|endoftext|>"}},
		{"hello<|endoftext|>", false, []string{"he", "ll", "o", "<", "|", "end", "of", "text", "|", ">"}},
		{"é", false, []string{"Ã", "©"}},
	}
	for _, c := range cases {
		ids, err := tok.Encode(c.text, false, c.parseSpecial)
		if err != nil {
			t.Fatal(err)
		}
		got := pieces(tok, ids)
		if c.text == "hello<|endoftext|>" && !c.parseSpecial {
			// pre-tokenized as "hello", "<|", "endoftext", "|>"
			c.want = []string{"he", "ll", "o", "<", "|", "e", "n", "d", "o", "f", "t", "e", "x", "t", "|", ">"}
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Encode(%q, parse=%v) = %q, want %q", c.text, c.parseSpecial, got, c.want)
		}
		if back := tok.Decode(ids, false, true); back != c.text {
			t.Errorf("Decode(Encode(%q)) = %q", c.text, back)
		}
	}
	if tok.AddBOS() || tok.BOS() != 11 || !tok.IsEOG(tok.ids["<|endoftext|>"]) {
		t.Errorf("gpt2 defaults: addBOS %v bos %d", tok.AddBOS(), tok.BOS())
	}
	// llama-bpe adds BOS by default and skips merges for whole-token words
	kv.Set(keyPre, "llama-bpe")
	if tok := mustTok(t, kv); !tok.AddBOS() || !tok.ignoreMerges {
		t.Errorf("llama-bpe: addBOS %v ignoreMerges %v", tok.AddBOS(), tok.ignoreMerges)
	}
}

func TestCleanSpaces(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"a", "a"},
		{"hello , world .", "hello, world."},
		{"what ? no !", "what? no!"},
		{"a ' b", "a'b"},
		{"it 's he 'll we 're they 've I 'm I 'd don 't", "it's he 'll we're they've I'm I 'd don 't"},
		{" .", "."},
		{"a '", "a '"}, // a lone apostrophe needs a space after it
	} {
		if got := string(cleanSpaces([]byte(c.in))); got != c.want {
			t.Errorf("cleanSpaces(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRegexEngine(t *testing.T) {
	for _, c := range []struct {
		pattern, text string
		want          []string // pieces after one split stage
	}{
		{`[0-9][0-9][0-9]`, "a12345b", []string{"a", "123", "45b"}},
		{`\s+(?!\S)|\s+`, "a   b", []string{"a", "  ", " ", "b"}},
		{`\s+$`, "a  b  ", []string{"a  b", "  "}},
		{`\s?\p{L}+`, "hi there!", []string{"hi", " there", "!"}},
		{`\p{N}{1,3}`, "12345", []string{"123", "45"}},
		{`(?:ab|a)(?=c)`, "abcac", []string{"ab", "c", "a", "c"}},
		{`a+?b`, "aaab", []string{"aaab"}},
		{`[^\s\p{L}]+`, "ab,. c", []string{"ab", ",.", " c"}},
		{`[\-x]+`, "a-x-b", []string{"a", "-x-", "b"}},
		{`\p{L}+`, "héllo wörld", []string{"héllo", " ", "wörld"}},
		{`\p{N}`, "a٣b", []string{"a", "٣", "b"}},
		{" ?[^(\\s|.,!?\u2026)]+", "hi, you…", []string{"hi", ",", " you", "…"}},
	} {
		s, err := newSplitter(c.pattern)
		if err != nil {
			t.Fatalf("%q: %v", c.pattern, err)
		}
		cpts := decodeCodepoints(c.text)
		lengths := s.split(cpts, collapseCategories(cpts), wideText(cpts), []int{len(cpts)})
		if got := piecesOf(cpts, lengths); !reflect.DeepEqual(got, c.want) {
			t.Errorf("split %q by %q = %q, want %q", c.text, c.pattern, got, c.want)
		}
	}
	for _, bad := range []string{`(ab`, `[ab`, `*a`, `\p{Xx}`, `a{2`, `(?<x>a)`} {
		if _, err := compileRegex(bad); err == nil {
			if _, err := newSplitter(bad); err == nil {
				t.Errorf("compile %q: want an error", bad)
			}
		}
	}
}

func piecesOf(cpts []uint32, lengths []int) []string {
	var out []string
	pos := 0
	for _, n := range lengths {
		var b []byte
		for _, cp := range cpts[pos : pos+n] {
			b, _ = appendCodepoint(b, cp)
		}
		out = append(out, string(b))
		pos += n
	}
	return out
}

// TestCustomSplittersMatchRegex checks the hand-written GPT-2 and Llama 3
// scanners against the general engine running the same patterns on random
// text built from characters of every class involved.
func TestCustomSplittersMatchRegex(t *testing.T) {
	alphabet := []string{"a", "Z", "é", "中", "1", "٣", " ", " ", "  ", "\n", "\r", "\t", "'", "s", "t", "re", "LL", "D",
		".", "!", "$", "😀", "\u00a0", "\u3000", "\u0301", "\x00"}
	rng := rand.New(rand.NewSource(1))
	for _, pat := range []string{reGPT2, reLlama3} {
		custom, _ := newSplitter(pat)
		re, err := compileRegex(pat)
		if err != nil {
			t.Fatal(err)
		}
		general := splitter{expr: pat, re: re, collapsed: true}
		for i := 0; i < 3000; i++ {
			var sb strings.Builder
			for n := rng.Intn(12); n >= 0; n-- {
				sb.WriteString(alphabet[rng.Intn(len(alphabet))])
			}
			text := sb.String()
			cpts := decodeCodepoints(text)
			col := collapseCategories(cpts)
			a := piecesOf(cpts, custom.split(cpts, col, nil, []int{len(cpts)}))
			b := piecesOf(cpts, general.split(cpts, col, nil, []int{len(cpts)}))
			if !reflect.DeepEqual(a, b) {
				t.Errorf("pattern %.20q… on %q: custom %q, regex %q", pat, text, a, b)
				break
			}
		}
	}
}

// TestUnicodeTables compares llama.cpp's category table with Go's unicode
// package. They come from different Unicode versions, so a few code points
// differ; the test reports how many and requires the Latin, Greek,
// Cyrillic and CJK blocks and ASCII to agree.
func TestUnicodeTables(t *testing.T) {
	goFlags := func(r rune) uint16 {
		switch {
		case unicode.IsLetter(r):
			return flagLetter
		case unicode.IsNumber(r):
			return flagNumber
		case unicode.IsMark(r):
			return flagAccentMark
		case unicode.IsPunct(r):
			return flagPunctuation
		case unicode.IsSymbol(r):
			return flagSymbol
		case unicode.In(r, unicode.Z):
			return flagSeparator
		case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs):
			return flagControl
		}
		return flagUndefined
	}
	diff := 0
	for r := rune(0); r < maxCodepoint; r++ {
		if cptFlags(uint32(r))&flagCategories != goFlags(r) {
			diff++
			if r < 0x590 || (r >= 0x4E00 && r <= 0x9FA5) {
				t.Errorf("U+%04X: llama.cpp flags %#x, Go %#x", r, cptFlags(uint32(r))&flagCategories, goFlags(r))
			}
		}
	}
	t.Logf("code points whose category differs between llama.cpp's table and Go %s: %d", unicode.Version, diff)
	for _, c := range []struct {
		cp   uint32
		want uint16
	}{{'a', flagLetter}, {'0', flagNumber}, {' ', flagSeparator | flagWhitespace}, {'\n', flagControl | flagWhitespace},
		{0x85, flagControl | flagWhitespace}, {0x3000, flagSeparator | flagWhitespace}, {0x1C, flagControl}, {0x110000, flagUndefined}} {
		if got := cptFlags(c.cp); got != c.want {
			t.Errorf("cptFlags(U+%04X) = %#x, want %#x", c.cp, got, c.want)
		}
	}
	if toLower('A') != 'a' || toLower(0x130) != 'i' || toLower('a') != 'a' {
		t.Error("toLower")
	}
	if nfdBase(0xE9) != 'e' || nfdBase('e') != 'e' {
		t.Error("nfdBase")
	}
}

func TestDecodeCodepoints(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []uint32
	}{
		{"aé中😀", []uint32{'a', 0xE9, 0x4E2D, 0x1F600}},
		{"\xff\x80a", []uint32{0xFFFD, 0xFFFD, 'a'}},
		{"\xe4\xb8", []uint32{0xFFFD, 0xFFFD}},
		{"\xed\xa0\x80", []uint32{0xD800}}, // surrogates pass, as in llama.cpp
		{"\xc0\xaf", []uint32{0x2F}},       // overlong forms pass too
	} {
		if got := decodeCodepoints(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("decodeCodepoints(%q) = %X, want %X", c.in, got, c.want)
		}
	}
}

func TestTokenToPiece(t *testing.T) {
	tok := mustTok(t, spmVocab(map[string]float32{"▁hi": -1}))
	hi := tok.ids["▁hi"]
	for _, c := range []struct {
		id      int32
		special bool
		want    string
	}{
		{hi, false, " hi"}, {1, false, ""}, {1, true, "<s>"}, {0, true, "<unk>"},
		{tok.ids["<0x41>"], false, "A"}, {-1, true, ""}, {1 << 20, true, ""},
	} {
		if got := tok.TokenToPiece(c.id, c.special); got != c.want {
			t.Errorf("TokenToPiece(%d, %v) = %q, want %q", c.id, c.special, got, c.want)
		}
	}
	if got := tok.Decode([]int32{1, hi, hi}, false, false); got != " hi hi" {
		t.Errorf("Decode with BOS kept = %q", got)
	}
	if got := tok.Decode([]int32{hi, hi}, false, false); got != "hi hi" {
		t.Errorf("Decode without BOS = %q", got)
	}
	if got := tok.Decode([]int32{1, hi, 2}, true, true); got != " hi</s>" {
		t.Errorf("Decode removeSpecial = %q", got)
	}
}

// FuzzEncode: encoding never panics, and for an SPM vocabulary with byte
// fallback, decoding gives back any valid UTF-8 text exactly.
func FuzzEncode(f *testing.F) {
	spm := mustTok(f, spmVocab(map[string]float32{"▁": -1, "a": -2, "ab": -0.5, "▁a": -0.8, "<|x|>": 0}))
	bpe := mustTok(f, bpeVocab("llama-bpe", []string{"Ġ t", "h e", "Ġt he"}, "<|endoftext|>"))
	coder := mustTok(f, bpeVocab("deepseek-coder", []string{"Ġ t", "h e"}))
	for _, s := range []string{"", "a", " ab ", "<s>a</s>", "héllo\n\n wörld", "\xff\xfe", "'s 'LL 123456", "<|endoftext|>"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, text string, parse bool) {
		ids, err := spm.Encode(text, false, parse)
		if err != nil {
			t.Fatal(err)
		}
		// invalid UTF-8 can swallow the first byte of an escaped space into a
		// byte-fallback symbol (as in llama.cpp), so only valid text round-trips
		if !parse && utf8.ValidString(text) {
			if back := spm.Decode(ids, false, false); back != text {
				t.Fatalf("SPM round trip: %q -> %v -> %q", text, ids, back)
			}
		}
		for _, tok := range []*Tokenizer{bpe, coder} {
			ids, err := tok.Encode(text, false, parse)
			if err != nil {
				continue // code points beyond U+10FFFF are rejected like llama.cpp
			}
			for _, id := range ids {
				if id < 0 || int(id) >= tok.NVocab() {
					t.Fatalf("id %d out of range", id)
				}
			}
			if !parse && utf8.ValidString(text) && tok.Decode(ids, false, false) != text && tok == coder {
				t.Fatalf("BPE round trip failed for %q", text)
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	tok := mustTok(b, spmVocab(map[string]float32{"▁": -1, "a": -2, "b": -3, "ab": -0.5, "▁a": -0.8, "abc": -0.1, "bc": -0.3}))
	text := strings.Repeat("abc ab a bca cab, é 12\n", 4096)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := tok.Encode(text, true, true); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAllPreTokenizers builds every pre-tokenizer llama.cpp b4748 names and
// runs it over mixed text: each pattern compiles and splits without losing
// or inventing text.
func TestAllPreTokenizers(t *testing.T) {
	names := []string{"", "default", "llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe", "deepseek-llm",
		"deepseek-coder", "deepseek-v3", "falcon", "starcoder", "refact", "codeshell", "exaone", "minerva-7b", "command-r",
		"smollm", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es", "jina-v2-de",
		"jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais", "qwen2", "deepseek-r1-qwen", "stablelm2", "megrez",
		"poro-chat", "bloom", "gpt3-finnish", "chatglm-bpe", "viking", "tekken", "chameleon"}
	text := "Hello, world! It's 2024-05-06: café 中文 ١٢٣ 😀  \n\n\t'LL  end  "
	for _, name := range names {
		tok := mustTok(t, bpeVocab(name, []string{"H e", "l l"}))
		words, err := tok.preTokenize(text)
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		var sb strings.Builder
		for _, w := range words {
			sb.WriteString(decodeByteLevel(w))
		}
		if sb.String() != text {
			t.Errorf("%q: words %q do not join back to the text", name, words)
		}
		ids, err := tok.Encode(text, true, true)
		if err != nil || len(ids) == 0 {
			t.Errorf("%q: Encode: %v, %d ids", name, err, len(ids))
		}
	}
	// qwen2 keeps digits single, llama3 groups them in threes
	for pre, want := range map[string][]string{
		"qwen2":     {"1", "2", "3", "4"},
		"llama-bpe": {"123", "4"},
		"gpt-2":     {"1234"},
		"tekken":    {"1", "2", "3", "4"},
	} {
		tok := mustTok(t, bpeVocab(pre, nil))
		words, _ := tok.preTokenize("1234")
		if !reflect.DeepEqual(words, want) {
			t.Errorf("%s: 1234 splits into %q, want %q", pre, words, want)
		}
	}
	// tekken splits camel case; chameleon isolates punctuation and image tokens
	for _, c := range []struct {
		pre, text string
		want      []string
	}{
		{"tekken", "HelloWorld foo", []string{"Hello", "World", "Ġfoo"}},
		{"chameleon", "a,b IMGIMGABZ", []string{"a", ",", "b", "Ġ", "IMGIMGABZ"}},
	} {
		words, err := mustTok(t, bpeVocab(c.pre, nil)).preTokenize(c.text)
		if err != nil || !reflect.DeepEqual(words, c.want) {
			t.Errorf("%s: %q splits into %q (%v), want %q", c.pre, c.text, words, err, c.want)
		}
	}
}

// FuzzRegex: compiling any pattern and splitting any text with it never
// panics, and the pieces always cover the text exactly.
func FuzzRegex(f *testing.F) {
	for _, p := range []string{reGPT2, reQwen2, reBloom, `\s+$`, `[0-9]{1,3}?`, `(?=a)|b*`, `[^\S\p{L}]`} {
		f.Add(p, "Hello, world! 123  \n x")
	}
	f.Fuzz(func(t *testing.T, pattern, text string) {
		if utf8.RuneCountInString(pattern) > 24 || utf8.RuneCountInString(text) > 24 {
			return // backtracking is exponential in the worst case; keep it small
		}
		s, err := newSplitter(pattern)
		if err != nil {
			return
		}
		cpts := decodeCodepoints(text)
		lengths := s.split(cpts, collapseCategories(cpts), wideText(cpts), []int{len(cpts)})
		total := 0
		for _, n := range lengths {
			if n <= 0 {
				t.Fatalf("empty piece in %v", lengths)
			}
			total += n
		}
		if total != len(cpts) {
			t.Fatalf("pieces cover %d of %d code points", total, len(cpts))
		}
	})
}

// TestConcurrentEncode shares one tokenizer between goroutines (run with
// -race to check that encoding keeps no shared state).
func TestConcurrentEncode(t *testing.T) {
	tok := mustTok(t, spmVocab(map[string]float32{"▁": -1, "a": -2, "ab": -0.5, "▁a": -0.8}))
	bpe := mustTok(t, bpeVocab("qwen2", []string{"Ġ t", "h e"}))
	text := strings.Repeat("ab a <s> ba\n", 50)
	want, _ := tok.Encode(text, true, true)
	wantBPE, _ := bpe.Encode(text, true, true)
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		go func() {
			got, _ := tok.Encode(text, true, true)
			gotBPE, _ := bpe.Encode(text, true, true)
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotBPE, wantBPE) {
				errs <- "concurrent Encode differs"
				return
			}
			errs <- ""
		}()
	}
	for g := 0; g < 8; g++ {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}

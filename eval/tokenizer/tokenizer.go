// Package tokenizer provides llama.cpp-compatible tokenizers (SPM, GPT-2
// BPE, WPM) built from GGUF tokenizer metadata. It reproduces llama.cpp
// b4748 (src/llama-vocab.cpp, src/unicode.cpp) token for token, including
// its defaults for absent keys, special-token partitioning and its Unicode
// tables (generated from llama.cpp's unicode-data.cpp, not Go's unicode
// package, whose Unicode version differs).
//
// Where llama.cpp's result is unspecified or it aborts, this package picks:
//   - special tokens of equal length are tried in id order (llama.cpp sorts
//     them with an unstable sort);
//   - end-of-turn and fill-in-the-middle tokens found by their text take the
//     lowest matching id (llama.cpp walks a hash map);
//   - a byte with no byte token, a code point beyond U+10FFFF, or a missing
//     BOS/EOS the vocabulary asks for is an error from Encode;
//   - ids outside the vocabulary render as "".
//
// Not supported: the UGM (T5) and RWKV models.
package tokenizer

import (
	"fmt"
	"sort"
	"strings"

	"github.com/llqt/llqt/formats"
)

// Kind is the tokenizer algorithm named by tokenizer.ggml.model.
type Kind int

// Tokenizer kinds.
const (
	SPM Kind = iota // "llama": SentencePiece-style score merges with byte fallback
	BPE             // "gpt2": byte-level BPE with ranked merges
	WPM             // "bert": WordPiece greedy longest match
)

func (k Kind) String() string {
	switch k {
	case SPM:
		return "SPM"
	case BPE:
		return "BPE"
	case WPM:
		return "WPM"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Attr is a token attribute bit set, with llama_token_attr's values.
type Attr uint32

// Token attributes.
const (
	AttrUndefined   Attr = 0
	AttrUnknown     Attr = 1 << 0
	AttrUnused      Attr = 1 << 1
	AttrNormal      Attr = 1 << 2
	AttrControl     Attr = 1 << 3
	AttrUserDefined Attr = 1 << 4
	AttrByte        Attr = 1 << 5
	AttrNormalized  Attr = 1 << 6
	AttrLStrip      Attr = 1 << 7
	AttrRStrip      Attr = 1 << 8
	AttrSingleWord  Attr = 1 << 9
)

// NoToken is llama.cpp's LLAMA_TOKEN_NULL.
const NoToken int32 = -1

// Tokenizer encodes text to token ids and back. It is safe for concurrent
// use once built.
type Tokenizer struct {
	kind   Kind
	pre    string // tokenizer.ggml.pre as given
	tokens []string
	scores []float32
	attrs  []Attr
	ids    map[string]int32

	ranks       map[mergePair]int32 // BPE merges
	pretok      []splitter          // BPE pre-tokenizer stages
	maxTokenLen int

	bos, eos, eot, eom, unk, sep, pad, mask        int32
	fimPre, fimSuf, fimMid, fimPad, fimRep, fimSep int32

	addSpacePrefix, addBOS, addEOS, ignoreMerges, cleanSpaces bool
	// nfc: text outside added tokens is NFC-normalised first (a
	// tokenizer.json NFC normalizer; llama.cpp has none).
	nfc bool

	tokenPairs [1024]uint64 // SPM: byte pairs that occur inside tokens

	specials []int32 // control, user-defined and unknown tokens, longest text first
	pieces   []string
	eog      map[int32]bool
}

type mergePair struct{ left, right string }

// Metadata keys read by FromKV.
const (
	keyModel     = "tokenizer.ggml.model"
	keyPre       = "tokenizer.ggml.pre"
	keyTokens    = "tokenizer.ggml.tokens"
	keyScores    = "tokenizer.ggml.scores"
	keyTypes     = "tokenizer.ggml.token_type"
	keyMerges    = "tokenizer.ggml.merges"
	keyAddBOS    = "tokenizer.ggml.add_bos_token"
	keyAddEOS    = "tokenizer.ggml.add_eos_token"
	keyAddPrefix = "tokenizer.ggml.add_space_prefix"
)

// GGUF token types (tokenizer.ggml.token_type values).
const (
	typeUndefined   = 0
	typeNormal      = 1
	typeUnknown     = 2
	typeControl     = 3
	typeUserDefined = 4
	typeUnused      = 5
	typeByte        = 6
)

// typeAttrs gives the attribute of each known token type; any other type
// is AttrUndefined.
var typeAttrs = map[int32]Attr{typeUnknown: AttrUnknown, typeUnused: AttrUnused, typeNormal: AttrNormal,
	typeControl: AttrControl, typeUserDefined: AttrUserDefined, typeByte: AttrByte}

// FromKV builds a tokenizer from GGUF metadata, applying llama.cpp's
// defaults for absent keys (llama_vocab::impl::load).
func FromKV(kv formats.KVs) (*Tokenizer, error) {
	model, ok := kv.String(keyModel)
	if !ok {
		return nil, fmt.Errorf("tokenizer: metadata lacks string %s", keyModel)
	}
	pre, _ := kv.String(keyPre)
	t := &Tokenizer{
		pre: pre,
		eot: NoToken, eom: NoToken, sep: NoToken, pad: NoToken, mask: NoToken,
		fimPre: NoToken, fimSuf: NoToken, fimMid: NoToken, fimPad: NoToken, fimRep: NoToken, fimSep: NoToken,
	}
	switch model {
	case "llama":
		t.kind = SPM
		t.bos, t.eos, t.unk = 1, 2, 0
		t.addSpacePrefix, t.addBOS = true, true
	case "bert":
		t.kind = WPM
		t.bos, t.eos, t.unk, t.sep, t.pad, t.mask = 101, NoToken, 100, 102, 0, 103
		t.cleanSpaces, t.addBOS = true, true
	case "gpt2":
		t.kind = BPE
		t.bos, t.eos, t.unk = 11, 11, NoToken
		t.cleanSpaces = true
		if err := t.loadMerges(kv); err != nil {
			return nil, err
		}
		if err := t.configurePre(pre); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("tokenizer: unsupported tokenizer model %q", model)
	}
	if v, ok := kv.Bool(keyAddPrefix); ok {
		t.addSpacePrefix = v
	}

	if err := t.loadTokens(kv); err != nil {
		return nil, err
	}
	t.loadSpecialIDs(kv)
	if t.kind == SPM {
		t.markTokenPairs()
	}
	if v, ok := kv.Bool(keyAddBOS); ok {
		t.addBOS = v
	}
	if v, ok := kv.Bool(keyAddEOS); ok {
		t.addEOS = v
	}
	t.detectSpecialsByText()

	t.indexTokens(AttrControl | AttrUserDefined | AttrUnknown)

	name, _ := kv.String("general.name")
	t.applyModelAttrs(strings.ToLower(name))
	return t, nil
}

// stringArray reads the string array at key; owner says in the error who
// lacks it.
func stringArray(kv formats.KVs, key, owner string) ([]string, error) {
	v, ok := kv.Get(key)
	if !ok {
		return nil, fmt.Errorf("tokenizer: %s lacks %s", owner, key)
	}
	arr, _ := v.(formats.Array)
	s, ok := arr.Values.([]string)
	if !ok {
		return nil, fmt.Errorf("tokenizer: %s is %T, want a string array", key, v)
	}
	return s, nil
}

func (t *Tokenizer) loadMerges(kv formats.KVs) error {
	merges, err := stringArray(kv, keyMerges, "gpt2 model")
	if err != nil {
		return err
	}
	t.ranks = make(map[mergePair]int32, len(merges))
	for i, m := range merges {
		// split at the first space after the first byte, as llama.cpp does
		var p mergePair
		if len(m) > 1 {
			if k := strings.IndexByte(m[1:], ' '); k >= 0 {
				p = mergePair{m[:k+1], m[k+2:]}
			}
		}
		if _, dup := t.ranks[p]; !dup {
			t.ranks[p] = int32(i)
		}
	}
	return nil
}

func (t *Tokenizer) loadTokens(kv formats.KVs) error {
	words, err := stringArray(kv, keyTokens, "metadata")
	if err != nil {
		return err
	}
	n := len(words)
	var scores []float32
	if v, ok := kv.Get(keyScores); ok {
		arr, _ := v.(formats.Array)
		s, ok := arr.Values.([]float32)
		if !ok || len(s) != n {
			return fmt.Errorf("tokenizer: %s must be %d float32 values", keyScores, n)
		}
		scores = s
	}
	var types []int32
	if v, ok := kv.Get(keyTypes); ok {
		arr, _ := v.(formats.Array)
		s, ok := int32s(arr.Values)
		if !ok || len(s) != n {
			return fmt.Errorf("tokenizer: %s must be %d integers", keyTypes, n)
		}
		types = s
	}

	t.tokens = make([]string, n)
	t.scores = make([]float32, n)
	t.attrs = make([]Attr, n)
	t.ids = make(map[string]int32, n)
	for i, w := range words {
		if w == "" {
			w = fmt.Sprintf("[EMPTY_%d]", i)
		}
		if prev, dup := t.ids[w]; dup {
			return fmt.Errorf("tokenizer: token %d duplicates token %d (%q)", i, prev, w)
		}
		t.ids[w] = int32(i)
		t.tokens[i] = w
		t.maxTokenLen = max(t.maxTokenLen, len(w))
		if scores != nil {
			t.scores[i] = scores[i]
		}
		t.attrs[i] = AttrNormal
		if types != nil {
			t.attrs[i] = AttrUndefined
			if a, ok := typeAttrs[types[i]]; ok {
				t.attrs[i] = a
			}
		}
	}
	return nil
}

// int32s converts an integer array to int32 (GGUF token types are int32, but
// llama.cpp would read any 4-byte integers the same way).
func int32s(v any) ([]int32, bool) {
	switch x := v.(type) {
	case []int32:
		return x, true
	case []uint32:
		out := make([]int32, len(x))
		for i, e := range x {
			out[i] = int32(e)
		}
		return out, true
	}
	return nil, false
}

// loadSpecialIDs reads the special token ids; an id outside the vocabulary
// keeps the default, as llama.cpp does.
func (t *Tokenizer) loadSpecialIDs(kv formats.KVs) {
	for _, s := range []struct {
		key string
		id  *int32
	}{
		{"tokenizer.ggml.bos_token_id", &t.bos},
		{"tokenizer.ggml.eos_token_id", &t.eos},
		{"tokenizer.ggml.eot_token_id", &t.eot},
		{"tokenizer.ggml.eom_token_id", &t.eom},
		{"tokenizer.ggml.unknown_token_id", &t.unk},
		{"tokenizer.ggml.seperator_token_id", &t.sep},
		{"tokenizer.ggml.padding_token_id", &t.pad},
		{"tokenizer.ggml.mask_token_id", &t.mask},
		{"tokenizer.ggml.fim_pre_token_id", &t.fimPre},
		{"tokenizer.ggml.fim_suf_token_id", &t.fimSuf},
		{"tokenizer.ggml.fim_mid_token_id", &t.fimMid},
		{"tokenizer.ggml.fim_pad_token_id", &t.fimPad},
		{"tokenizer.ggml.fim_rep_token_id", &t.fimRep},
		{"tokenizer.ggml.fim_sep_token_id", &t.fimSep},
		{"tokenizer.ggml.prefix_token_id", &t.fimPre},
		{"tokenizer.ggml.suffix_token_id", &t.fimSuf},
		{"tokenizer.ggml.middle_token_id", &t.fimMid},
	} {
		if v, ok := kv.Uint(s.key); ok && v < uint64(len(t.tokens)) {
			*s.id = int32(v)
		}
	}
}

// detectSpecialsByText finds end-of-turn and fill-in-the-middle tokens by
// their usual texts and builds the end-of-generation set, forcing such
// tokens to be control tokens (llama.cpp's workaround for converters that
// do not mark them).
func (t *Tokenizer) detectSpecialsByText() {
	markControl := func(id int32) { t.attrs[id] = AttrControl }
	find := func(id *int32, texts ...string) {
		if *id != NoToken {
			return
		}
		for i, w := range t.tokens {
			for _, s := range texts {
				if w == s {
					*id = int32(i)
					if t.attrs[i]&AttrControl == 0 {
						markControl(int32(i))
					}
					return
				}
			}
		}
	}
	find(&t.eot, "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "<｜end▁of▁sentence｜>")
	find(&t.eom, "<|eom_id|>")
	find(&t.fimPre, "<|fim_prefix|>", "<fim-prefix>", "<｜fim▁begin｜>", "<PRE>")
	find(&t.fimSuf, "<|fim_suffix|>", "<fim-suffix>", "<｜fim▁hole｜>", "<SUF>")
	find(&t.fimMid, "<|fim_middle|>", "<fim-middle>", "<｜fim▁end｜>", "<MID>")
	find(&t.fimPad, "<|fim_pad|>", "<fim-pad>", "<PAD>")
	find(&t.fimRep, "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>")
	find(&t.fimSep, "<|file_sep|>")

	t.eog = map[int32]bool{}
	for _, id := range []int32{t.fimPad, t.fimRep, t.fimSep} {
		if id != NoToken {
			t.eog[id] = true
		}
	}
	for i, w := range t.tokens {
		switch w {
		case "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>":
			t.eog[int32(i)] = true
			if t.attrs[i]&AttrControl == 0 {
				markControl(int32(i))
			}
		}
	}
	for _, id := range []int32{t.eos, t.eot, t.eom} {
		if id != NoToken {
			t.eog[id] = true
		}
	}
}

// applyModelAttrs sets the per-model strip attributes llama.cpp hard-codes
// by tokenizer and model name.
func (t *Tokenizer) applyModelAttrs(modelName string) {
	set := func(text string, a Attr, on bool) {
		id, ok := t.ids[text]
		if !ok {
			return
		}
		if on {
			t.attrs[id] |= a
		} else {
			t.attrs[id] &^= a
		}
	}
	switch {
	case strings.Contains(t.pre, "jina-v2-de"), strings.Contains(t.pre, "jina-v2-es"), strings.Contains(t.pre, "jina-v2-code"):
		set("<mask>", AttrLStrip, true)
	case strings.Contains(modelName, "phi-3"), strings.Contains(modelName, "phi3"):
		for _, id := range t.specials {
			t.attrs[id] |= AttrRStrip
		}
		set("</s>", AttrRStrip, true)
		for _, s := range []string{"<unk>", "<s>", "<|endoftext|>"} {
			set(s, AttrRStrip, false)
		}
	}
}

// Kind reports the tokenizer algorithm.
func (t *Tokenizer) Kind() Kind { return t.kind }

// Pre reports the pre-tokenizer name from tokenizer.ggml.pre ("" if absent).
func (t *Tokenizer) Pre() string { return t.pre }

// BOS is the beginning-of-sequence token, or NoToken.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS is the end-of-sequence token, or NoToken.
func (t *Tokenizer) EOS() int32 { return t.eos }

// AddBOS reports whether Encode with addSpecial puts BOS first.
func (t *Tokenizer) AddBOS() bool { return t.addBOS }

// AddEOS reports whether Encode with addSpecial puts EOS last.
func (t *Tokenizer) AddEOS() bool { return t.addEOS }

// NVocab is the number of tokens.
func (t *Tokenizer) NVocab() int { return len(t.tokens) }

// IsEOG reports whether id ends generation (EOS, EOT, EOM and the like).
func (t *Tokenizer) IsEOG(id int32) bool { return id != NoToken && t.eog[id] }

// Token returns the text of token id as stored in the vocabulary.
func (t *Tokenizer) Token(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// TokenAttr returns the attributes of token id (AttrUndefined if out of range).
func (t *Tokenizer) TokenAttr(id int32) Attr {
	if id < 0 || int(id) >= len(t.attrs) {
		return AttrUndefined
	}
	return t.attrs[id]
}

// TokenID looks a token up by its vocabulary text.
func (t *Tokenizer) TokenID(text string) (int32, bool) {
	id, ok := t.ids[text]
	return id, ok
}

// EOT is the end-of-turn token, or NoToken.
func (t *Tokenizer) EOT() int32 { return t.eot }

// Unknown is the unknown token, or NoToken.
func (t *Tokenizer) Unknown() int32 { return t.unk }

// Sep is the separator token (BERT's [SEP]), or NoToken.
func (t *Tokenizer) Sep() int32 { return t.sep }

// Pad is the padding token, or NoToken.
func (t *Tokenizer) Pad() int32 { return t.pad }

// Score returns the merge score of token id (0 if out of range).
func (t *Tokenizer) Score(id int32) float32 {
	if id < 0 || int(id) >= len(t.scores) {
		return 0
	}
	return t.scores[id]
}

// indexTokens lists the special tokens, those with any of the special
// attributes, longest first as the special-token splitter tries them, and
// renders every token's piece.
func (t *Tokenizer) indexTokens(special Attr) {
	for id, a := range t.attrs {
		if a&special != 0 {
			t.specials = append(t.specials, int32(id))
		}
	}
	// llama.cpp uses an unstable sort by length; ties keep id order here.
	sort.SliceStable(t.specials, func(i, j int) bool {
		return len(t.tokens[t.specials[i]]) > len(t.tokens[t.specials[j]])
	})
	t.pieces = make([]string, len(t.tokens))
	for id := range t.tokens {
		t.pieces[id] = t.renderPiece(int32(id))
	}
}

package convert

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/llqt/llqt/formats"
)

// GGUF token types (llama.cpp's llama_token_type), which for SentencePiece
// vocabularies equal the piece types.
const (
	TokenNormal      int32 = 1
	TokenUnknown     int32 = 2
	TokenControl     int32 = 3
	TokenUserDefined int32 = 4
	TokenUnused      int32 = 5
	TokenByte        int32 = 6
)

// readJSON decodes dir/name into v with json.Number numbers. found is false
// when the file does not exist.
func readJSON(dir, name string, v any) (found bool, err error) {
	path := filepath.Join(dir, name)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return true, fmt.Errorf("%s: %w: invalid JSON: %v", path, ErrTokenizer, err)
	}
	return true, nil
}

// jsonInt is Python's isinstance(v, int) for a decoded JSON value.
func jsonInt(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok || strings.ContainsAny(string(n), ".eE") {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

// orderedObject decodes a JSON object keeping its key order (Python dicts
// keep it, and some of llama.cpp's loops depend on it).
type orderedObject struct {
	Keys   []string
	Values map[string]any
}

func (o *orderedObject) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("want a JSON object")
	}
	o.Values = map[string]any{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		k := kt.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if _, seen := o.Values[k]; !seen {
			o.Keys = append(o.Keys, k)
		}
		o.Values[k] = v
	}
	_, err = dec.Token()
	return err
}

// looksSpecial is convert_hf_to_gguf.py's does_token_look_special.
func looksSpecial(tok string) bool {
	switch tok {
	case "<pad>", "<mask>", "<2mass>", "[@BOS@]":
		return true
	}
	return (strings.HasPrefix(tok, "<|") && strings.HasSuffix(tok, "|>")) ||
		(strings.HasPrefix(tok, "<｜") && strings.HasSuffix(tok, "｜>")) ||
		(strings.HasPrefix(tok, "<unused") && strings.HasSuffix(tok, ">"))
}

// Vocab is a tokenizer as GGUF stores it.
type Vocab struct {
	Model  string // tokenizer.ggml.model: "llama" or "gpt2"
	Pre    string // tokenizer.ggml.pre
	Tokens []string
	Scores []float32 // nil for BPE
	Types  []int32
}

// add writes the vocabulary keys in convert_hf_to_gguf.py's order.
func (v *Vocab) add(b *Builder) {
	b.AddString("tokenizer.ggml.model", v.Model)
	b.AddString("tokenizer.ggml.pre", v.Pre)
	if len(v.Tokens) > 0 {
		b.Add("tokenizer.ggml.tokens", formats.Array{Elem: formats.ValString, Values: v.Tokens})
	}
	if len(v.Scores) > 0 {
		b.Add("tokenizer.ggml.scores", formats.Array{Elem: formats.ValFloat32, Values: v.Scores})
	}
	if len(v.Types) > 0 {
		b.Add("tokenizer.ggml.token_type", formats.Array{Elem: formats.ValInt32, Values: v.Types})
	}
}

// SentencePieceVocab builds the vocabulary from dir/tokenizer.model as
// convert_hf_to_gguf.py's _create_vocab_sentencepiece does: every piece with
// its score and type, padded to vocabSize with [PADi] entries, then
// overridden by added_tokens.json and tokenizer_config.json's
// added_tokens_decoder. vocabSize < 0 means the model's own size.
// found is false when there is no tokenizer.model.
func SentencePieceVocab(dir string, vocabSize int, warn func(string, ...any)) (v *Vocab, found bool, err error) {
	return sentencePieceVocab(dir, vocabSize, warn, false)
}

// sentencePieceVocab is SentencePieceVocab; with phi3 it follows
// Phi3MiniModel.set_vocab instead: added_tokens_decoder entries are
// USER_DEFINED unless marked special (no look-alike rule, no U+2581
// replacement), and tokenizer.json's added_tokens are applied the same way
// afterwards.
func sentencePieceVocab(dir string, vocabSize int, warn func(string, ...any), phi3 bool) (v *Vocab, found bool, err error) {
	path := filepath.Join(dir, "tokenizer.model")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	sp, err := ParseSentencePiece(data)
	if err != nil {
		return nil, true, fmt.Errorf("%s: %w", path, err)
	}
	if vocabSize < 0 {
		vocabSize = len(sp.Pieces)
	}
	if len(sp.Pieces) > vocabSize {
		return nil, true, fmt.Errorf("%s: %w: %d pieces but config vocab_size is %d", path, ErrTokenizer, len(sp.Pieces), vocabSize)
	}
	v = &Vocab{Model: "llama", Pre: "default",
		Tokens: make([]string, vocabSize), Scores: make([]float32, vocabSize), Types: make([]int32, vocabSize)}
	for i := range v.Tokens {
		v.Tokens[i] = "[PAD" + strconv.Itoa(i) + "]"
		v.Scores[i] = -10000
		v.Types[i] = TokenUnused
	}
	for i, p := range sp.Pieces {
		v.Tokens[i] = p.Text
		v.Scores[i] = p.Score
		switch p.Type {
		case PieceUnknown, PieceControl, PieceUnused, PieceByte:
			v.Types[i] = int32(p.Type)
		default: // NORMAL and USER_DEFINED read back as NORMAL
			v.Types[i] = TokenNormal
		}
	}
	var added orderedObject
	if found, err := readJSON(dir, "added_tokens.json", &added); err != nil {
		return nil, true, err
	} else if found {
		for _, tok := range added.Keys {
			id, ok := jsonInt(added.Values[tok])
			if !ok || id < 0 {
				return nil, true, fmt.Errorf("%s: %w: token %q has id %v", filepath.Join(dir, "added_tokens.json"), ErrTokenizer, tok, added.Values[tok])
			}
			if id >= int64(vocabSize) {
				warn("ignore token %d: id is out of range, max=%d", id, vocabSize-1)
				continue
			}
			v.Tokens[id], v.Scores[id], v.Types[id] = tok, -1000, TokenUserDefined
		}
	}
	var tc struct {
		AddedTokensDecoder orderedObject `json:"added_tokens_decoder"`
	}
	tcPath := filepath.Join(dir, "tokenizer_config.json")
	if _, err := readJSON(dir, "tokenizer_config.json", &tc); err != nil {
		return nil, true, err
	}
	for _, key := range tc.AddedTokensDecoder.Keys {
		id, err := strconv.Atoi(key)
		if err != nil || id < 0 || id >= vocabSize {
			return nil, true, fmt.Errorf("%s: %w: added_tokens_decoder id %q is not a token id below %d", tcPath, ErrTokenizer, key, vocabSize)
		}
		entry, _ := tc.AddedTokensDecoder.Values[key].(map[string]any)
		content, ok := entry["content"].(string)
		if !ok {
			return nil, true, fmt.Errorf("%s: %w: added_tokens_decoder[%s] has no content", tcPath, ErrTokenizer, key)
		}
		if v.Types[id] != TokenUnused && v.Tokens[id] != content {
			warn("replacing token %d: %q -> %q", id, v.Tokens[id], content)
		}
		special, _ := entry["special"].(bool)
		switch {
		case phi3 && special:
			v.Types[id] = TokenControl
		case phi3:
			v.Types[id] = TokenUserDefined
		case special || looksSpecial(content):
			v.Types[id] = TokenControl
		default:
			content = strings.ReplaceAll(content, "\u2581", " ")
			v.Types[id] = TokenUserDefined
		}
		v.Scores[id] = -1000
		v.Tokens[id] = content
	}
	if phi3 {
		if err := phi3AddedTokens(dir, v, warn); err != nil {
			return nil, true, err
		}
	}
	return v, true, nil
}

// phi3AddedTokens applies tokenizer.json's added_tokens as Phi-3's
// converter does.
func phi3AddedTokens(dir string, v *Vocab, warn func(string, ...any)) error {
	var tj struct {
		AddedTokens []map[string]any `json:"added_tokens"`
	}
	path := filepath.Join(dir, "tokenizer.json")
	if found, err := readJSON(dir, "tokenizer.json", &tj); err != nil || !found {
		return err
	}
	for _, at := range tj.AddedTokens {
		id, ok := jsonInt(at["id"])
		content, isStr := at["content"].(string)
		if !ok || id < 0 || id >= int64(len(v.Tokens)) || !isStr {
			return fmt.Errorf("%s: %w: added token %v has id %v, not a token id below %d", path, ErrTokenizer, at["content"], at["id"], len(v.Tokens))
		}
		if v.Types[id] != TokenUnused && v.Tokens[id] != content {
			warn("replacing token %d: %q -> %q", id, v.Tokens[id], content)
		}
		v.Tokens[id], v.Scores[id], v.Types[id] = content, -1000, TokenUserDefined
		if special, _ := at["special"].(bool); special {
			v.Types[id] = TokenControl
		}
	}
	return nil
}

// hfTokenizer is the part of tokenizer.json a converter reads.
type hfTokenizer struct {
	Model struct {
		Type         string          `json:"type"`
		Vocab        map[string]any  `json:"vocab"`
		Merges       json.RawMessage `json:"merges"`
		ByteFallback bool            `json:"byte_fallback"`
	} `json:"model"`
	AddedTokens []struct {
		ID      any    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
}

// BPEVocab builds a GPT-2 style vocabulary from dir/tokenizer.json as
// convert_hf_to_gguf.py's get_vocab_base does, with pre as its
// tokenizer.ggml.pre (see detectPre). vocabSize < 0 means the tokenizer's
// own size. found is false when there is no tokenizer.json.
//
// b4748 rewrites an added token that is not "normalized" as
// decode(encode(token)); for the special and added tokens of real
// tokenizers that is the token itself, and it is kept as is here.
func BPEVocab(dir string, vocabSize int, pre string) (v *Vocab, found bool, err error) {
	path := filepath.Join(dir, "tokenizer.json")
	var tj hfTokenizer
	if found, err := readJSON(dir, "tokenizer.json", &tj); err != nil || !found {
		return nil, found, err
	}
	if tj.Model.Type != "BPE" {
		return nil, true, fmt.Errorf("%s: %w: model type %q is not supported (want BPE)", path, ErrTokenizer, tj.Model.Type)
	}
	if tj.Model.ByteFallback {
		return nil, true, fmt.Errorf("%s: %w: a SentencePiece-style BPE tokenizer (byte_fallback) needs tokenizer.model, which is missing", path, ErrTokenizer)
	}
	byID := map[int64]string{}
	var maxID int64 = -1
	for tok, raw := range tj.Model.Vocab {
		id, ok := jsonInt(raw)
		if !ok || id < 0 {
			return nil, true, fmt.Errorf("%s: %w: vocab entry %q has id %v", path, ErrTokenizer, tok, raw)
		}
		byID[id] = tok
		maxID = max(maxID, id)
	}
	type addedInfo struct{ special bool }
	added := map[string]addedInfo{}
	for _, at := range tj.AddedTokens {
		id, ok := jsonInt(at.ID)
		if !ok || id < 0 {
			return nil, true, fmt.Errorf("%s: %w: added token %q has id %v", path, ErrTokenizer, at.Content, at.ID)
		}
		byID[id] = at.Content
		added[at.Content] = addedInfo{at.Special}
		maxID = max(maxID, id)
	}
	if vocabSize < 0 {
		vocabSize = len(byID)
	}
	if maxID >= int64(vocabSize) {
		return nil, true, fmt.Errorf("%s: %w: token id %d is not below vocab_size %d", path, ErrTokenizer, maxID, vocabSize)
	}
	v = &Vocab{Model: "gpt2", Pre: pre, Tokens: make([]string, vocabSize), Types: make([]int32, vocabSize)}
	for i := range v.Tokens {
		tok, ok := byID[int64(i)]
		switch {
		case !ok:
			v.Tokens[i], v.Types[i] = "[PAD"+strconv.Itoa(i)+"]", TokenUnused
		case hasKey(added, tok):
			if added[tok].special || looksSpecial(tok) {
				v.Types[i] = TokenControl
			} else {
				tok = strings.ReplaceAll(tok, "\u2581", " ")
				v.Types[i] = TokenUserDefined
			}
			v.Tokens[i] = tok
		default:
			v.Tokens[i], v.Types[i] = tok, TokenNormal
		}
	}
	return v, true, nil
}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}

// specialVocab is gguf-py's SpecialVocab: merges, special token ids,
// add_*_token flags and the chat template, gathered from tokenizer.json,
// tokenizer_config.json, config.json and merges.txt with its precedence
// (the first source to set a type wins).
type specialVocab struct {
	dir        string
	types      []string
	nVocab     int // < 0: unbounded
	loadMerges bool

	merges []string
	ids    []typedID
	adds   []typedBool
	chat   any // string, []any of {name, template}, or nil
}

type typedID struct {
	typ string
	id  int64
}

type typedBool struct {
	typ string
	v   bool
}

var defaultSpecialTypes = []string{"bos", "eos", "unk", "sep", "pad", "cls", "mask"}

// specialIDKeys are the GGUF keys gguf-py has writers for; other types
// (cls, prefix, …) are skipped, as gguf-py does with a warning.
var specialIDKeys = map[string]string{
	"bos": "tokenizer.ggml.bos_token_id", "eos": "tokenizer.ggml.eos_token_id",
	"unk": "tokenizer.ggml.unknown_token_id", "sep": "tokenizer.ggml.seperator_token_id",
	"pad": "tokenizer.ggml.padding_token_id", "mask": "tokenizer.ggml.mask_token_id",
	"eot": "tokenizer.ggml.eot_token_id", "eom": "tokenizer.ggml.eom_token_id",
}

var addKeys = map[string]string{
	"bos": "tokenizer.ggml.add_bos_token", "eos": "tokenizer.ggml.add_eos_token",
}

func loadSpecialVocab(dir string, types []string, nVocab int, loadMerges bool, warn func(string, ...any)) (*specialVocab, error) {
	sv := &specialVocab{dir: dir, types: types, nVocab: nVocab, loadMerges: loadMerges}
	if err := sv.fromTokenizerJSON(warn); err != nil {
		return nil, err
	}
	var cfg map[string]any
	if found, err := readJSON(dir, "config.json", &cfg); err != nil {
		return nil, err
	} else if found {
		for _, typ := range sv.types {
			if err := sv.set(typ, cfg[typ+"_token_id"], warn); err != nil {
				return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
			}
		}
	}
	if sv.loadMerges && len(sv.merges) == 0 {
		if err := sv.mergesTxt(warn); err != nil {
			return nil, err
		}
	}
	return sv, nil
}

func (sv *specialVocab) set(typ string, v any, warn func(string, ...any)) error {
	id, ok := jsonInt(v)
	if !ok {
		return nil
	}
	if id < 0 {
		return fmt.Errorf("%w: invalid value for special token type %s: %d", ErrTokenizer, typ, id)
	}
	if sv.nVocab >= 0 && id >= int64(sv.nVocab) {
		warn("special token type %s, id %d out of range, must be under %d - skipping", typ, id, sv.nVocab)
		return nil
	}
	for _, x := range sv.ids {
		if x.typ == typ {
			return nil
		}
	}
	sv.ids = append(sv.ids, typedID{typ, id})
	return nil
}

func (sv *specialVocab) fromTokenizerJSON(warn func(string, ...any)) error {
	var tj struct {
		Model struct {
			Merges json.RawMessage `json:"merges"`
		} `json:"model"`
		AddedTokens []map[string]any `json:"added_tokens"`
	}
	tjPath := filepath.Join(sv.dir, "tokenizer.json")
	found, err := readJSON(sv.dir, "tokenizer.json", &tj)
	if err != nil {
		return err
	}
	if found && sv.loadMerges && len(tj.Model.Merges) > 0 {
		var flat []string
		var pairs [][]string
		if json.Unmarshal(tj.Model.Merges, &flat) == nil {
			sv.merges = flat
		} else if json.Unmarshal(tj.Model.Merges, &pairs) == nil {
			// transformers ≥ 4.45 stores pairs; gguf-py joins them with a
			// space after moving spaces inside tokens to U+0120.
			for _, p := range pairs {
				if len(p) != 2 {
					return fmt.Errorf("%s: %w: merge %q is not a pair", tjPath, ErrTokenizer, p)
				}
				sv.merges = append(sv.merges, strings.ReplaceAll(p[0], " ", "\u0120")+" "+strings.ReplaceAll(p[1], " ", "\u0120"))
			}
		} else {
			return fmt.Errorf("%s: %w: unknown merges format", tjPath, ErrTokenizer)
		}
	}
	var tc map[string]any
	tcPath := filepath.Join(sv.dir, "tokenizer_config.json")
	if found, err := readJSON(sv.dir, "tokenizer_config.json", &tc); err != nil || !found {
		return err
	}
	switch ct := tc["chat_template"].(type) {
	case nil, string, []any:
		sv.chat = ct
	default:
		warn("bad type for chat_template field in %s - ignoring", tcPath)
	}
	for _, typ := range sv.types {
		if b, ok := tc["add_"+typ+"_token"].(bool); ok {
			replaced := false
			for i := range sv.adds {
				if sv.adds[i].typ == typ {
					sv.adds[i].v, replaced = b, true
				}
			}
			if !replaced {
				sv.adds = append(sv.adds, typedBool{typ, b})
			}
		}
		var content string
		switch e := tc[typ+"_token"].(type) {
		case string:
			content = e
		case map[string]any:
			c, ok := e["content"].(string)
			if !ok {
				continue
			}
			content = c
		default:
			continue
		}
		for _, at := range tj.AddedTokens {
			if at["content"] == content {
				if err := sv.set(typ, at["id"], warn); err != nil {
					return fmt.Errorf("%s: %w", tjPath, err)
				}
				break
			}
		}
	}
	return nil
}

func (sv *specialVocab) mergesTxt(warn func(string, ...any)) error {
	path := filepath.Join(sv.dir, "merges.txt")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<24)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if line == 1 && strings.HasPrefix(text, "#") {
			continue
		}
		if text == "" {
			continue
		}
		parts := strings.Fields(text)
		if len(parts) != 2 {
			warn("merges.txt: Line %d: Entry malformed, ignoring", line)
			continue
		}
		sv.merges = append(sv.merges, parts[0]+" "+parts[1])
	}
	return sc.Err()
}

// add writes merges, special ids, add_* flags and the chat template.
func (sv *specialVocab) add(b *Builder) error {
	if len(sv.merges) > 0 {
		b.Add("tokenizer.ggml.merges", formats.Array{Elem: formats.ValString, Values: sv.merges})
	} else if sv.loadMerges {
		b.Warn("adding merges requested but no merges found, output may be non-functional")
	}
	for _, x := range sv.ids {
		key, ok := specialIDKeys[x.typ]
		if !ok {
			b.Warn("no handler for special token type %s with id %d - skipping", x.typ, x.id)
			continue
		}
		if x.id > 0xFFFFFFFF {
			return fmt.Errorf("%w: special token %s id %d does not fit uint32", ErrTokenizer, x.typ, x.id)
		}
		b.Add(key, uint32(x.id))
	}
	for _, x := range sv.adds {
		if key, ok := addKeys[x.typ]; ok {
			b.Add(key, x.v)
		} else {
			b.Warn("no handler for add_%s_token with value %v - skipping", x.typ, x.v)
		}
	}
	return addChatTemplate(b, sv.chat)
}

// addChatTemplate writes tokenizer.chat_template; a list of named templates
// becomes tokenizer.chat_template.NAME keys, tokenizer.chat_templates (sorted
// names; gguf-py's order is a Python set's) and the "default" one.
func addChatTemplate(b *Builder, ct any) error {
	switch t := ct.(type) {
	case string:
		b.AddString("tokenizer.chat_template", t)
	case []any:
		var def *string
		var names []string
		for _, choice := range t {
			m, _ := choice.(map[string]any)
			name, _ := m["name"].(string)
			tmpl, ok := m["template"].(string)
			name = strings.Map(func(r rune) rune {
				if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
					return r
				}
				return '_'
			}, name)
			if name == "" || !ok {
				continue
			}
			if name == "default" {
				def = &tmpl
				continue
			}
			if !hasString(names, name) {
				names = append(names, name)
			}
			b.AddString("tokenizer.chat_template."+name, tmpl)
		}
		if len(names) > 0 {
			sort.Strings(names)
			b.Add("tokenizer.chat_templates", formats.Array{Elem: formats.ValString, Values: names})
		}
		if def != nil {
			b.AddString("tokenizer.chat_template", *def)
		}
	}
	return nil
}

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// hfJSON is the part of a Hugging Face tokenizer.json that byte-level BPE
// tokenizers use.
type hfJSON struct {
	AddedTokens []struct {
		ID         json.Number `json:"id"`
		Content    string      `json:"content"`
		SingleWord bool        `json:"single_word"`
		LStrip     bool        `json:"lstrip"`
		RStrip     bool        `json:"rstrip"`
		Normalized bool        `json:"normalized"`
		Special    bool        `json:"special"`
	} `json:"added_tokens"`
	Normalizer    *hfComponent `json:"normalizer"`
	PreTokenizer  *hfComponent `json:"pre_tokenizer"`
	PostProcessor *hfComponent `json:"post_processor"`
	Model         struct {
		Type         string                 `json:"type"`
		Vocab        map[string]json.Number `json:"vocab"`
		Merges       json.RawMessage        `json:"merges"`
		IgnoreMerges bool                   `json:"ignore_merges"`
		ByteFallback bool                   `json:"byte_fallback"`
	} `json:"model"`
}

// hfComponent is a normalizer, pre-tokenizer or post-processor; the fields
// used depend on Type.
type hfComponent struct {
	Type           string        `json:"type"`
	Normalizers    []hfComponent `json:"normalizers"`
	PreTokenizers  []hfComponent `json:"pretokenizers"`
	Processors     []hfComponent `json:"processors"`
	Pattern        *hfPattern    `json:"pattern"`
	Behavior       string        `json:"behavior"`
	Invert         bool          `json:"invert"`
	AddPrefixSpace bool          `json:"add_prefix_space"`
	UseRegex       *bool         `json:"use_regex"`
	Single         []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
		Sequence *struct {
			ID string `json:"id"`
		} `json:"Sequence"`
	} `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int32 `json:"ids"`
	} `json:"special_tokens"`
}

type hfPattern struct {
	Regex  *string `json:"Regex"`
	String *string `json:"String"`
}

// reHFGPT2 is the pattern of tokenizers' ByteLevel pre-tokenizer with
// use_regex (GPT-2's).
const reHFGPT2 = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// FromHFJSON builds a tokenizer that encodes as Hugging Face's tokenizers
// library does with a byte-level BPE tokenizer.json: added tokens are found
// in the text first (special or not, as HF always does), the Split and
// ByteLevel pre-tokenizers, BPE with ranked merges (and ignore_merges),
// and a TemplateProcessing post-processor that puts one special token
// before and/or after the text (Encode's addSpecial). path is used in
// errors. Components it does not implement are an error naming them.
func FromHFJSON(data []byte, path string) (*Tokenizer, error) {
	var j hfJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("%s: not a tokenizer.json: %v", path, err)
	}
	if j.Model.Type != "BPE" {
		return nil, fmt.Errorf("%s: model type %q is not supported (want BPE)", path, j.Model.Type)
	}
	if j.Model.ByteFallback {
		return nil, fmt.Errorf("%s: a BPE with byte_fallback (SentencePiece style) is not supported", path)
	}
	t := &Tokenizer{
		kind: BPE, pre: "hf",
		bos: NoToken, eos: NoToken, eot: NoToken, eom: NoToken, unk: NoToken, sep: NoToken, pad: NoToken, mask: NoToken,
		fimPre: NoToken, fimSuf: NoToken, fimMid: NoToken, fimPad: NoToken, fimRep: NoToken, fimSep: NoToken,
		ignoreMerges: j.Model.IgnoreMerges,
		eog:          map[int32]bool{},
	}
	byID := map[int64]string{}
	var maxID int64 = -1
	addID := func(tok string, n json.Number) (int64, error) {
		id, err := strconv.ParseInt(string(n), 10, 32)
		if err != nil || id < 0 {
			return 0, fmt.Errorf("%s: token %q has id %q", path, tok, n)
		}
		byID[id] = tok
		maxID = max(maxID, id)
		return id, nil
	}
	for tok, n := range j.Model.Vocab {
		if tok == "" {
			return nil, fmt.Errorf("%s: the vocabulary has an empty token", path)
		}
		if _, err := addID(tok, n); err != nil {
			return nil, err
		}
	}
	attrs := map[int64]Attr{}
	for _, at := range j.AddedTokens {
		if at.Content == "" {
			return nil, fmt.Errorf("%s: added token %s has no content", path, at.ID)
		}
		id, err := addID(at.Content, at.ID)
		if err != nil {
			return nil, err
		}
		a := AttrUserDefined
		if at.Special {
			a = AttrControl
		}
		if at.LStrip {
			a |= AttrLStrip
		}
		if at.RStrip {
			a |= AttrRStrip
		}
		if at.SingleWord {
			a |= AttrSingleWord
		}
		if at.Normalized {
			a |= AttrNormalized
		}
		attrs[id] = a
	}
	// Ids may leave holes, but not so many that a lying id could make the
	// token table huge.
	if maxID >= int64(4*len(byID)+1024) {
		return nil, fmt.Errorf("%s: token id %d is far beyond the %d tokens", path, maxID, len(byID))
	}
	n := int(maxID + 1)
	t.tokens = make([]string, n)
	t.scores = make([]float32, n)
	t.attrs = make([]Attr, n)
	t.ids = make(map[string]int32, n)
	for i := range t.tokens {
		tok, ok := byID[int64(i)]
		if !ok {
			// a hole in the ids: a placeholder no text can produce
			t.tokens[i], t.attrs[i] = "\x00hole"+strconv.Itoa(i), AttrUnused
			continue
		}
		t.tokens[i] = tok
		t.attrs[i] = AttrNormal
		if a, ok := attrs[int64(i)]; ok {
			t.attrs[i] = a
		}
		t.ids[tok] = int32(i)
		t.maxTokenLen = max(t.maxTokenLen, len(tok))
	}
	if err := t.hfMerges(j.Model.Merges, path); err != nil {
		return nil, err
	}
	if err := t.hfNormalizer(j.Normalizer, path); err != nil {
		return nil, err
	}
	if err := t.hfPreTokenizer(j.PreTokenizer, path); err != nil {
		return nil, err
	}
	if err := t.hfPostProcessor(j.PostProcessor, path); err != nil {
		return nil, err
	}
	t.indexTokens(AttrControl | AttrUserDefined)
	return t, nil
}

func (t *Tokenizer) hfMerges(raw json.RawMessage, path string) error {
	var flat []string
	var pairs [][]string
	switch {
	case len(raw) == 0:
	case json.Unmarshal(raw, &flat) == nil:
		for _, m := range flat {
			l, r, ok := strings.Cut(m, " ")
			if !ok {
				return fmt.Errorf("%s: merge %q is not two tokens", path, m)
			}
			pairs = append(pairs, []string{l, r})
		}
	case json.Unmarshal(raw, &pairs) == nil:
	default:
		return fmt.Errorf("%s: merges are neither strings nor pairs", path)
	}
	t.ranks = make(map[mergePair]int32, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 {
			return fmt.Errorf("%s: merge %d is not a pair", path, i)
		}
		k := mergePair{p[0], p[1]}
		if _, dup := t.ranks[k]; !dup {
			t.ranks[k] = int32(i)
		}
	}
	return nil
}

// hfSequence applies a Sequence component's parts in order.
func hfSequence(parts []hfComponent, path string, apply func(c *hfComponent, path string) error) error {
	for i := range parts {
		if err := apply(&parts[i], path); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tokenizer) hfNormalizer(c *hfComponent, path string) error {
	if c == nil {
		return nil
	}
	switch c.Type {
	case "NFC":
		t.nfc = true
		return nil
	case "Sequence":
		return hfSequence(c.Normalizers, path, t.hfNormalizer)
	}
	return fmt.Errorf("%s: normalizer %q is not supported", path, c.Type)
}

func (t *Tokenizer) hfPreTokenizer(c *hfComponent, path string) error {
	if c == nil {
		return nil
	}
	switch c.Type {
	case "Sequence":
		return hfSequence(c.PreTokenizers, path, t.hfPreTokenizer)
	case "Split":
		if c.Behavior != "Isolated" || c.Invert || c.Pattern == nil {
			return fmt.Errorf("%s: Split pre-tokenizer with behavior %q, invert %v is not supported (want Isolated)", path, c.Behavior, c.Invert)
		}
		var expr string
		switch {
		case c.Pattern.Regex != nil:
			expr = *c.Pattern.Regex
		case c.Pattern.String != nil:
			expr = quoteRegex(*c.Pattern.String)
		default:
			return fmt.Errorf("%s: Split pre-tokenizer without a pattern", path)
		}
		s, err := newSplitter(expr)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		t.pretok = append(t.pretok, s)
		return nil
	case "ByteLevel":
		// Bytes are always mapped to GPT-2's code points by encodeBPE.
		if c.AddPrefixSpace {
			return fmt.Errorf("%s: ByteLevel pre-tokenizer with add_prefix_space is not supported", path)
		}
		if c.UseRegex == nil || *c.UseRegex {
			s, err := newSplitter(reHFGPT2)
			if err != nil {
				return err
			}
			t.pretok = append(t.pretok, s)
		}
		return nil
	}
	return fmt.Errorf("%s: pre-tokenizer %q is not supported", path, c.Type)
}

func quoteRegex(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (t *Tokenizer) hfPostProcessor(c *hfComponent, path string) error {
	if c == nil {
		return nil
	}
	switch c.Type {
	case "ByteLevel":
		return nil
	case "Sequence":
		return hfSequence(c.Processors, path, t.hfPostProcessor)
	case "TemplateProcessing":
		seen := false
		for _, item := range c.Single {
			switch {
			case item.Sequence != nil:
				if seen {
					return fmt.Errorf("%s: TemplateProcessing with two sequences in single", path)
				}
				seen = true
			case item.SpecialToken != nil:
				st, ok := c.SpecialTokens[item.SpecialToken.ID]
				if !ok || len(st.IDs) != 1 {
					return fmt.Errorf("%s: TemplateProcessing token %q has no single id", path, item.SpecialToken.ID)
				}
				id := st.IDs[0]
				if id < 0 || int(id) >= len(t.tokens) {
					return fmt.Errorf("%s: TemplateProcessing id %d is not a token", path, id)
				}
				switch {
				case !seen && !t.addBOS:
					t.bos, t.addBOS = id, true
				case seen && !t.addEOS:
					t.eos, t.addEOS = id, true
				default:
					return fmt.Errorf("%s: TemplateProcessing with more than one token on a side is not supported", path)
				}
			}
		}
		return nil
	}
	return fmt.Errorf("%s: post-processor %q is not supported", path, c.Type)
}

// EncodeHF encodes text with the tokenizer.json in data as Hugging Face's
// tokenizer.encode does by default (post-processor tokens added, added
// tokens recognised in the text). It fits convert.HFEncoder.
func EncodeHF(data []byte, path, text string) ([]int32, error) {
	tok, err := FromHFJSON(data, path)
	if err != nil {
		return nil, err
	}
	return tok.Encode(text, true, true)
}

package tokenizer

import (
	"fmt"
)

// Pre-tokenizer regexes, as llama.cpp b4748 lists them per pre-tokenizer
// type (llm_tokenizer_bpe). Each stage splits the pieces of the previous one.
const (
	reGPT2   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
	reLlama3 = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	reQwen2  = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	reBloom  = " ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+"
	// reDeepseekLetters is deepseek-llm's explicit letter class (escaped so
	// that no editor normalises the code points).
	reDeepseekLetters = "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3\U000104D8-\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-\U000118DF\U0001E900-\U0001E943]+"
	reDeepseekPunct   = "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+"
	reCJK             = "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+"
	reKana            = "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+"
)

// configurePre selects the pre-tokenizer stages and the flags llama.cpp ties
// to each tokenizer.ggml.pre value.
func (t *Tokenizer) configurePre(pre string) error {
	var exprs []string
	switch pre {
	case "", "default":
		exprs = []string{`[\p{P}\$\+<=>\^~\|]+`, reGPT2, `\p{N}+`, `[0-9][0-9][0-9]`}
	case "llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe":
		exprs = []string{reLlama3}
		if pre != "dbrx" && pre != "smaug-bpe" {
			t.ignoreMerges, t.addBOS = true, true
		}
	case "deepseek-llm":
		exprs = []string{"[\r\n]", reDeepseekLetters, reDeepseekPunct, `\s+$`, reCJK, `\p{N}+`}
		t.cleanSpaces = false
	case "deepseek-coder":
		exprs = []string{"[\r\n]", `\s?\p{L}+`, `\s?\p{P}+`, reCJK, `\p{N}`}
		t.cleanSpaces = false
	case "deepseek-v3":
		exprs = []string{`\p{N}{1,3}`, reKana,
			"[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}
		t.cleanSpaces = false
	case "falcon":
		exprs = []string{"[\\p{P}\\$\\+<=>\\^~\\|`]+", reGPT2, `[0-9][0-9][0-9]`}
	case "starcoder", "refact", "codeshell", "exaone", "minerva-7b":
		exprs = []string{`\p{N}`, reGPT2}
	case "command-r", "smollm":
		exprs = []string{`\p{N}`, reGPT2}
		t.cleanSpaces = false
	case "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe",
		"mpt", "olmo", "jais":
		exprs = []string{reGPT2}
	case "qwen2", "deepseek-r1-qwen":
		exprs = []string{reQwen2}
		t.cleanSpaces = false
	case "stablelm2", "megrez":
		exprs = []string{reQwen2}
	case "poro-chat", "bloom", "gpt3-finnish":
		exprs = []string{reBloom}
		if pre == "poro-chat" {
			t.cleanSpaces = false
		}
	case "chatglm-bpe":
		exprs = []string{reLlama3}
		t.bos = NoToken
	case "tekken":
		exprs = []string{`[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`}
		t.cleanSpaces, t.ignoreMerges, t.addBOS = false, true, true
	case "chameleon":
		exprs = []string{`<sentinel:[0-9]+>`, `(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z`, `([\t\n]|    |  )`, `\p{N}`,
			"[\\p{P}!-/:-@\\[-`{-~]", reGPT2}
		t.cleanSpaces, t.addBOS = false, true
	case "viking":
		exprs = []string{reBloom, `\p{N}`}
		t.cleanSpaces = false
	default:
		return fmt.Errorf("tokenizer: unsupported pre-tokenizer %q", pre)
	}
	for _, e := range exprs {
		s, err := newSplitter(e)
		if err != nil {
			return fmt.Errorf("tokenizer: pre-tokenizer %q: %w", pre, err)
		}
		t.pretok = append(t.pretok, s)
	}
	return nil
}

// bpeBigram is a candidate merge of two adjacent symbols in a word.
type bpeBigram struct {
	left, right   int32
	rank          int32
	leftN, rightN int32 // symbol lengths when queued; a change makes it stale
}

// before orders BPE merges: lowest rank first, ties to the leftmost pair.
func (b bpeBigram) before(o bpeBigram) bool {
	if b.rank != o.rank {
		return b.rank < o.rank
	}
	return b.left < o.left
}

// encodeBPE pre-tokenizes a raw text fragment into words, maps each word's
// bytes to GPT-2's printable code points and merges pairs by rank.
func (t *Tokenizer) encodeBPE(text string, out []int32) ([]int32, error) {
	words, err := t.preTokenize(text)
	if err != nil {
		return nil, err
	}
	var syms []symbol
	var q mergeQueue[bpeBigram]
	for _, word := range words {
		if word == "" {
			continue
		}
		syms = syms[:0]
		q = q[:0]
		if _, ok := t.ids[word]; ok && t.ignoreMerges {
			syms = append(syms, symbol{prev: -1, next: -1, start: 0, n: int32(len(word))})
		} else {
			syms = appendChars(syms, word)
		}
		tryAdd := func(left, right int32) {
			if left < 0 || right < 0 {
				return
			}
			a, b := syms[left], syms[right]
			rank, ok := t.ranks[mergePair{word[a.start : a.start+a.n], word[b.start : b.start+b.n]}]
			if !ok {
				return
			}
			q.push(bpeBigram{left: left, right: right, rank: rank, leftN: a.n, rightN: b.n})
		}
		for i := int32(1); i < int32(len(syms)); i++ {
			tryAdd(i-1, i)
		}
		for len(q) > 0 {
			bg := q.pop()
			l, r := &syms[bg.left], &syms[bg.right]
			if l.n == 0 || r.n == 0 || l.n != bg.leftN || r.n != bg.rightN {
				continue // stale: a side changed since it was queued
			}
			join(syms, bg.left, bg.right)
			tryAdd(l.prev, bg.left)
			tryAdd(bg.left, l.next)
		}
		for _, s := range syms {
			if s.n == 0 {
				continue
			}
			piece := word[s.start : s.start+s.n]
			if id, ok := t.ids[piece]; ok {
				out = append(out, id)
				continue
			}
			// no token: fall back to single raw bytes that happen to be tokens
			for j := 0; j < len(piece); j++ {
				if id, ok := t.ids[piece[j:j+1]]; ok {
					out = append(out, id)
				}
			}
		}
	}
	return out, nil
}

// preTokenize splits text into words and maps each word's bytes through
// the GPT-2 byte-to-unicode table.
func (t *Tokenizer) preTokenize(text string) ([]string, error) {
	cpts := decodeCodepoints(text)
	lengths := []int{len(cpts)}
	var collapsed, wide []uint32
	for _, s := range t.pretok {
		switch {
		case s.custom != nil:
		case s.collapsed && collapsed == nil:
			collapsed = collapseCategories(cpts)
		case !s.collapsed && wide == nil:
			wide = wideText(cpts)
		}
		lengths = s.split(cpts, collapsed, wide, lengths)
	}
	words := make([]string, 0, len(lengths))
	var raw, enc []byte
	pos := 0
	var err error
	for _, n := range lengths {
		raw = raw[:0]
		for _, cp := range cpts[pos : pos+n] {
			if raw, err = appendCodepoint(raw, cp); err != nil {
				return nil, fmt.Errorf("tokenizer: %w", err)
			}
		}
		pos += n
		enc = enc[:0]
		for _, b := range raw {
			enc = append(enc, byteToUnicode[b]...)
		}
		words = append(words, string(enc))
	}
	return words, nil
}

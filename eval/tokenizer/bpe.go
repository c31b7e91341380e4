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
	reBloom  = ` ?[^(\s|.,!?…。，、।۔،)]+`
	// reDeepseekLetters is deepseek-llm's explicit letter class.
	reDeepseekLetters = `\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+`
	reCJK             = `[一-龥ࠀ-一가-퟿]+`
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
		exprs = []string{"[\r\n]", reDeepseekLetters, `\s?[!-/:-~！-／：-～‘-‟　-。]+`, `\s+$`, reCJK, `\p{N}+`}
		t.cleanSpaces = false
	case "deepseek-coder":
		exprs = []string{"[\r\n]", `\s?\p{L}+`, `\s?\p{P}+`, reCJK, `\p{N}`}
		t.cleanSpaces = false
	case "deepseek-v3":
		exprs = []string{`\p{N}{1,3}`, `[一-龥぀-ゟ゠-ヿ]+`,
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

// bpeQueue is a min-heap on rank; ties go to the leftmost pair.
type bpeQueue []bpeBigram

func (q bpeQueue) less(i, j int) bool {
	if q[i].rank != q[j].rank {
		return q[i].rank < q[j].rank
	}
	return q[i].left < q[j].left
}

func (q *bpeQueue) push(b bpeBigram) {
	*q = append(*q, b)
	h := *q
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *bpeQueue) pop() bpeBigram {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l, r, best := 2*i+1, 2*i+2, i
		if l < len(h) && h.less(l, best) {
			best = l
		}
		if r < len(h) && h.less(r, best) {
			best = r
		}
		if best == i {
			break
		}
		h[i], h[best] = h[best], h[i]
		i = best
	}
	*q = h
	return top
}

// encodeBPE pre-tokenizes a raw text fragment into words, maps each word's
// bytes to GPT-2's printable code points and merges pairs by rank.
func (t *Tokenizer) encodeBPE(text string, out []int32) ([]int32, error) {
	words, err := t.preTokenize(text)
	if err != nil {
		return nil, err
	}
	var syms []symbol
	var q bpeQueue
	for _, word := range words {
		if word == "" {
			continue
		}
		syms = syms[:0]
		q = q[:0]
		if _, ok := t.ids[word]; ok && t.ignoreMerges {
			syms = append(syms, symbol{prev: -1, next: -1, start: 0, n: int32(len(word))})
		} else {
			for off := 0; off < len(word); {
				n := min(utf8SeqLen(word[off]), len(word)-off)
				i := int32(len(syms))
				next := i + 1
				if off+n == len(word) {
					next = -1
				}
				syms = append(syms, symbol{prev: i - 1, next: next, start: int32(off), n: int32(n)})
				off += n
			}
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
			l.n += r.n
			r.n = 0
			l.next = r.next
			if r.next >= 0 {
				syms[r.next].prev = bg.left
			}
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

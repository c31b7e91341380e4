package tokenizer

import "fmt"

// symbol is a run of bytes in a linked list of symbols being merged.
type symbol struct {
	prev, next int32 // neighbours, -1 at the ends
	start, n   int32 // byte range in the word; n == 0 once merged away
}

// spmBigram is a candidate merge of two adjacent symbols.
type spmBigram struct {
	left, right int32
	score       float32
	size        int32 // byte length of the merged text when queued
}

// before orders SPM merges: highest score first, ties to the leftmost pair.
func (b spmBigram) before(o spmBigram) bool {
	if b.score != o.score {
		return b.score > o.score
	}
	return b.left < o.left
}

// encodeSPM tokenizes one escaped text fragment: start from UTF-8
// characters, repeatedly merge the adjacent pair whose concatenation is the
// highest-scoring vocabulary token, then emit each symbol as its token or,
// failing that, as byte tokens.
//
// The text is first cut between characters whose two bytes never stand
// side by side inside any vocabulary token: no merge can cross such a cut,
// so the pieces evolve independently and merging them one by one gives
// exactly what one global queue gives, with much smaller queues.
func (t *Tokenizer) encodeSPM(text string, out []int32) ([]int32, error) {
	var sc spmScratch
	start := 0
	var err error
	for off := 0; off < len(text); {
		if off > start && !t.pairInToken(text[off-1], text[off]) {
			if out, err = t.mergeSPM(text[start:off], out, &sc); err != nil {
				return nil, err
			}
			start = off
		}
		off += min(utf8SeqLen(text[off]), len(text)-off)
	}
	if start < len(text) {
		return t.mergeSPM(text[start:], out, &sc)
	}
	return out, nil
}

// spmScratch holds buffers reused across the pieces of one text.
type spmScratch struct {
	syms []symbol
	q    mergeQueue[spmBigram]
}

// pairInToken reports whether bytes a, b occur adjacently in some token.
func (t *Tokenizer) pairInToken(a, b byte) bool {
	k := uint(a)<<8 | uint(b)
	return t.tokenPairs[k/64]&(1<<(k%64)) != 0
}

// markTokenPairs records every adjacent byte pair inside every token.
func (t *Tokenizer) markTokenPairs() {
	for _, w := range t.tokens {
		for i := 1; i < len(w); i++ {
			k := uint(w[i-1])<<8 | uint(w[i])
			t.tokenPairs[k/64] |= 1 << (k % 64)
		}
	}
}

// mergeSPM runs the score-ordered merges over one piece of text.
func (t *Tokenizer) mergeSPM(text string, out []int32, sc *spmScratch) ([]int32, error) {
	if text == "" {
		return out, nil
	}
	syms := appendChars(sc.syms[:0], text)

	q := sc.q[:0]
	defer func() { sc.syms, sc.q = syms, q }()
	bigram := func(left, right int32) (spmBigram, bool) {
		a, b := syms[left], syms[right]
		merged := text[a.start : b.start+b.n]
		id, ok := t.ids[merged]
		if !ok {
			return spmBigram{}, false
		}
		return spmBigram{left: left, right: right, score: t.scores[id], size: int32(len(merged))}, true
	}
	tryAdd := func(left, right int32) {
		if left < 0 || right < 0 {
			return
		}
		if bg, ok := bigram(left, right); ok {
			q.push(bg)
		}
	}
	for i := int32(1); i < int32(len(syms)); i++ {
		if bg, ok := bigram(i-1, i); ok {
			q = append(q, bg)
		}
	}
	q.heapify()
	for len(q) > 0 {
		bg := q.pop()
		l, r := &syms[bg.left], &syms[bg.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != bg.size {
			continue // stale: one side was merged since
		}
		join(syms, bg.left, bg.right)
		tryAdd(l.prev, bg.left)
		tryAdd(bg.left, l.next)
	}

	for i := int32(0); i != -1; i = syms[i].next {
		s := syms[i]
		piece := text[s.start : s.start+s.n]
		if id, ok := t.ids[piece]; ok {
			out = append(out, id)
			continue
		}
		for j := 0; j < len(piece); j++ {
			id, err := t.byteToken(piece[j])
			if err != nil {
				return nil, err
			}
			out = append(out, id)
		}
	}
	return out, nil
}

// byteToken finds the token for a raw byte: <0xXX>, or the byte itself.
func (t *Tokenizer) byteToken(b byte) (int32, error) {
	const hex = "0123456789ABCDEF"
	if id, ok := t.ids[string([]byte{'<', '0', 'x', hex[b>>4], hex[b&15], '>'})]; ok {
		return id, nil
	}
	if id, ok := t.ids[string([]byte{b})]; ok {
		return id, nil
	}
	return NoToken, fmt.Errorf("tokenizer: byte 0x%02X has no token (no <0x%02X> and no raw byte piece)", b, b)
}

// appendChars appends to syms, which must be empty, one symbol per UTF-8
// character of s, linked as a list: the starting point of both merge
// loops. Characters are cut at the length their lead byte announces (as
// llama.cpp's unicode_len_utf8), the last one at the end of s.
func appendChars(syms []symbol, s string) []symbol {
	for off := 0; off < len(s); {
		n := min(utf8SeqLen(s[off]), len(s)-off)
		i := int32(len(syms))
		next := i + 1
		if off+n == len(s) {
			next = -1
		}
		syms = append(syms, symbol{prev: i - 1, next: next, start: int32(off), n: int32(n)})
		off += n
	}
	return syms
}

// join merges symbol right into its left neighbour left; right leaves the
// list.
func join(syms []symbol, left, right int32) {
	l, r := &syms[left], &syms[right]
	l.n += r.n
	r.n = 0
	l.next = r.next
	if r.next >= 0 {
		syms[r.next].prev = left
	}
}

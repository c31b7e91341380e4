package tokenizer

import (
	"errors"
	"fmt"
	"strings"
)

// fragment is a piece of the input: raw text still to tokenize, or a
// special token already recognised.
type fragment struct {
	token      int32 // NoToken for raw text
	start, end int   // byte range of raw text
}

// partition splits text around special tokens, longest token text first, as
// llama.cpp's tokenizer_st_partition does. Control and unknown tokens are
// only recognised when parseSpecial is set; user-defined tokens always are.
func (t *Tokenizer) partition(text string, parseSpecial bool) []fragment {
	if text == "" {
		return nil
	}
	frags := []fragment{{token: NoToken, start: 0, end: len(text)}}
	var next []fragment
	for _, id := range t.specials {
		attr := t.attrs[id]
		if !parseSpecial && attr&(AttrControl|AttrUnknown) != 0 {
			continue
		}
		special := t.tokens[id]
		next = next[:0]
		changed := false
		for _, f := range frags {
			if f.token != NoToken {
				next = append(next, f)
				continue
			}
			start, end := f.start, f.end
			for start < end {
				k := strings.Index(text[start:end], special)
				if k < 0 {
					break
				}
				changed = true
				match := start + k
				left := match
				if attr&AttrLStrip != 0 {
					for left > start && isSpaceASCII(text[left-1]) {
						left--
					}
				}
				if left > start {
					next = append(next, fragment{token: NoToken, start: start, end: left})
				}
				next = append(next, fragment{token: id})
				start = match + len(special)
				if start < end && attr&AttrRStrip != 0 {
					for start < end && isSpaceASCII(text[start]) {
						start++
					}
				}
			}
			if start < end {
				next = append(next, fragment{token: NoToken, start: start, end: end})
			}
		}
		if changed {
			frags, next = next, frags
		}
	}
	return frags
}

// maxTextLen keeps byte offsets (and SPM's space escaping, which can triple
// the length) within int32.
const maxTextLen = 1 << 29

// Encode tokenizes text like llama_tokenize (and common_tokenize): with
// addSpecial, BOS/EOS (or BERT's CLS/SEP) are added as the vocabulary says;
// with parseSpecial, control tokens written in the text are recognised.
func (t *Tokenizer) Encode(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	if len(text) > maxTextLen {
		return nil, fmt.Errorf("tokenizer: text of %d bytes exceeds the %d-byte limit", len(text), maxTextLen)
	}
	frags := t.partition(text, parseSpecial)
	out := make([]int32, 0, len(text)/3+2)
	if t.kind != SPM && t.kind != BPE && t.kind != WPM {
		return out, nil
	}
	// What addSpecial puts around the text: BOS and EOS as the vocabulary
	// says, or BERT's CLS (the vocabulary's BOS) and SEP always.
	addHead, addTail, tail := addSpecial && t.addBOS, addSpecial && t.addEOS, t.eos
	headErr, tailErr := "vocabulary adds BOS but has none", "vocabulary adds EOS but has none"
	if t.kind == WPM {
		addHead, addTail, tail = addSpecial, addSpecial, t.sep
		headErr, tailErr = "vocabulary has no CLS/BOS token", "vocabulary has no SEP token"
	}
	if addHead {
		if t.bos == NoToken {
			return nil, errors.New("tokenizer: " + headErr)
		}
		out = append(out, t.bos)
	}
	prevSpecial := true // SPM: the first fragment gets the dummy space prefix
	var buf []byte
	var err error
	for _, f := range frags {
		if f.token != NoToken {
			out = append(out, f.token)
			prevSpecial = true
			continue
		}
		switch t.kind {
		case SPM:
			buf = buf[:0]
			if t.addSpacePrefix && prevSpecial {
				buf = append(buf, "\u2581"...)
			}
			buf = escapeSpaces(buf, text[f.start:f.end])
			out, err = t.encodeSPM(string(buf), out)
		case BPE:
			seg := text[f.start:f.end]
			if t.nfc { // tokenizer.json's NFC normalizer (FromHFJSON)
				seg = nfc(seg)
			}
			out, err = t.encodeBPE(seg, out)
		case WPM:
			out, err = t.encodeWPM(text[f.start:f.end], out)
		}
		if err != nil {
			return nil, err
		}
		prevSpecial = false
	}
	if addTail {
		if tail == NoToken {
			return nil, errors.New("tokenizer: " + tailErr)
		}
		out = append(out, tail)
	}
	return out, nil
}

// escapeSpaces appends s with each ' ' replaced by U+2581 (▁), SentencePiece's
// visible space.
func escapeSpaces(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			dst = append(dst, "\u2581"...)
		} else {
			dst = append(dst, s[i])
		}
	}
	return dst
}

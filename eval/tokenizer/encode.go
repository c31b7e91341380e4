package tokenizer

import (
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
	var err error
	switch t.kind {
	case SPM:
		if addSpecial && t.addBOS {
			if t.bos == NoToken {
				return nil, fmt.Errorf("tokenizer: vocabulary adds BOS but has none")
			}
			out = append(out, t.bos)
		}
		prevSpecial := true // the first fragment gets the dummy space prefix
		var buf []byte
		for _, f := range frags {
			if f.token != NoToken {
				out = append(out, f.token)
				prevSpecial = true
				continue
			}
			buf = buf[:0]
			if t.addSpacePrefix && prevSpecial {
				buf = append(buf, "\u2581"...)
			}
			buf = escapeSpaces(buf, text[f.start:f.end])
			if out, err = t.encodeSPM(string(buf), out); err != nil {
				return nil, err
			}
			prevSpecial = false
		}
		if addSpecial && t.addEOS {
			if t.eos == NoToken {
				return nil, fmt.Errorf("tokenizer: vocabulary adds EOS but has none")
			}
			out = append(out, t.eos)
		}
	case BPE:
		if addSpecial && t.addBOS {
			if t.bos == NoToken {
				return nil, fmt.Errorf("tokenizer: vocabulary adds BOS but has none")
			}
			out = append(out, t.bos)
		}
		for _, f := range frags {
			if f.token != NoToken {
				out = append(out, f.token)
				continue
			}
			seg := text[f.start:f.end]
			if t.nfc {
				seg = nfc(seg)
			}
			if out, err = t.encodeBPE(seg, out); err != nil {
				return nil, err
			}
		}
		if addSpecial && t.addEOS {
			if t.eos == NoToken {
				return nil, fmt.Errorf("tokenizer: vocabulary adds EOS but has none")
			}
			out = append(out, t.eos)
		}
	case WPM:
		if addSpecial {
			if t.bos == NoToken {
				return nil, fmt.Errorf("tokenizer: vocabulary has no CLS/BOS token")
			}
			out = append(out, t.bos)
		}
		for _, f := range frags {
			if f.token != NoToken {
				out = append(out, f.token)
				continue
			}
			if out, err = t.encodeWPM(text[f.start:f.end], out); err != nil {
				return nil, err
			}
		}
		if addSpecial {
			if t.sep == NoToken {
				return nil, fmt.Errorf("tokenizer: vocabulary has no SEP token")
			}
			out = append(out, t.sep)
		}
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

package tokenizer

import (
	"fmt"
	"strings"
)

// renderPiece is the text of a token as llama_token_to_piece gives it with
// special=true; TokenToPiece serves it from a cache.
func (t *Tokenizer) renderPiece(id int32) string {
	attr := t.attrs[id]
	text := t.tokens[id]
	if attr&(AttrUnknown|AttrControl|AttrUserDefined) != 0 {
		return text
	}
	switch t.kind {
	case SPM, WPM:
		if attr&AttrNormal != 0 {
			return strings.ReplaceAll(text, "\u2581", " ")
		}
		if attr&AttrByte != 0 && t.kind == SPM {
			if b, ok := parseByteToken(text); ok {
				return string([]byte{b})
			}
		}
	case BPE:
		if attr&AttrNormal != 0 {
			return decodeByteLevel(text)
		}
	}
	return "" // unused and undefined tokens render as nothing
}

// parseByteToken reads the byte of a <0xXX> token (llama.cpp parses the two
// characters after "<0x" as hex).
func parseByteToken(text string) (byte, bool) {
	if len(text) < 5 {
		return 0, false
	}
	var b byte
	for _, c := range []byte(text[3:5]) {
		b <<= 4
		switch {
		case c >= '0' && c <= '9':
			b |= c - '0'
		case c >= 'a' && c <= 'f':
			b |= c - 'a' + 10
		case c >= 'A' && c <= 'F':
			b |= c - 'A' + 10
		default:
			return 0, false
		}
	}
	return b, true
}

// decodeByteLevel maps GPT-2 byte-level code points back to bytes; a code
// point outside the table is written out as llama.cpp does.
func decodeByteLevel(text string) string {
	var out []byte
	for _, cp := range decodeCodepoints(text) {
		if b, ok := unicodeToByte[cp]; ok {
			out = append(out, b)
			continue
		}
		enc, _ := appendCodepoint(nil, cp)
		out = append(out, "[UNK_BYTE_0x"...)
		for _, c := range enc {
			out = fmt.Appendf(out, "%02x", c)
		}
		out = append(out, text...)
		out = append(out, ']')
	}
	return string(out)
}

// TokenToPiece returns the text of one token like llama_token_to_piece with
// lstrip 0: control and unknown tokens render only when special is set. An
// id outside the vocabulary renders as "".
func (t *Tokenizer) TokenToPiece(id int32, special bool) string {
	if id < 0 || int(id) >= len(t.pieces) {
		return ""
	}
	if !special && t.attrs[id]&(AttrUnknown|AttrControl) != 0 {
		return ""
	}
	return t.pieces[id]
}

// Decode turns tokens back into text like llama_detokenize: removeSpecial
// drops a leading BOS and trailing EOS the vocabulary adds, unparseSpecial
// renders control tokens, the dummy space prefix is removed from the first
// piece, and BPE/WPM vocabularies that ask for it get their spaces before
// punctuation cleaned up.
func (t *Tokenizer) Decode(ids []int32, removeSpecial, unparseSpecial bool) string {
	removeSpace := t.addSpacePrefix
	if removeSpecial && t.addBOS && len(ids) > 0 && ids[0] == t.bos {
		removeSpace = false
		ids = ids[1:]
	}
	if removeSpecial && t.addEOS && len(ids) > 0 && ids[len(ids)-1] == t.eos {
		ids = ids[:len(ids)-1]
	}
	var buf []byte
	for _, id := range ids {
		p := t.TokenToPiece(id, unparseSpecial)
		if removeSpace && strings.HasPrefix(p, " ") {
			p = p[1:]
		}
		removeSpace = false
		buf = append(buf, p...)
	}
	if t.cleanSpaces {
		buf = cleanSpaces(buf)
	}
	return string(buf)
}

// cleanSpaces is clean_up_tokenization_spaces in llama.cpp's three passes:
// drop the space before ? ! . and ,; drop the spaces around a lone
// apostrophe; drop the space before 's 'm 're 've.
func cleanSpaces(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	// pass 1
	src := append([]byte(nil), b...)
	out := b[:1]
	for i := 1; i < len(src); i++ {
		x := src[i]
		if src[i-1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',') {
			out = out[:len(out)-1]
		}
		out = append(out, x)
	}
	// pass 2
	src = append(src[:0], out...)
	out = out[:1]
	for i := 1; i < len(src); i++ {
		x := src[i]
		if x == '\'' && i+1 < len(src) && src[i-1] == ' ' && src[i+1] == ' ' {
			out = out[:len(out)-1]
			i++
			src[i] = 0 // llama.cpp overwrites the skipped space with NUL
		}
		out = append(out, x)
	}
	// pass 3
	src = append(src[:0], out...)
	out = out[:1]
	for i := 1; i < len(src); i++ {
		x := src[i]
		if src[i-1] == ' ' && x == '\'' && i+1 < len(src) {
			x1 := src[i+1]
			switch {
			case x1 == 't' || x1 == 'd':
			case x1 == 's' || x1 == 'm':
				out = out[:len(out)-1]
			case i+2 < len(src):
				x2 := src[i+2]
				if (x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e') {
					out = out[:len(out)-1]
				}
			}
		}
		out = append(out, x)
	}
	return out
}

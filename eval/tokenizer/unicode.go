package tokenizer

import (
	"fmt"
	"sort"
	"sync"
)

// Code point category flags, with the bit values of llama.cpp's
// unicode_cpt_flags. Every code point below maxCodepoint has exactly one
// category bit; out-of-range positions in the splitters read as 0.
const (
	flagUndefined   uint16 = 1 << 0
	flagNumber      uint16 = 1 << 1 // \p{N}
	flagLetter      uint16 = 1 << 2 // \p{L}
	flagSeparator   uint16 = 1 << 3 // \p{Z}
	flagAccentMark  uint16 = 1 << 4 // \p{M}
	flagPunctuation uint16 = 1 << 5 // \p{P}
	flagSymbol      uint16 = 1 << 6 // \p{S}
	flagControl     uint16 = 1 << 7 // \p{C}
	flagCategories  uint16 = 0xFF
	flagWhitespace  uint16 = 1 << 8 // \s in llama.cpp's sense
)

// maxCodepoint is one past the last Unicode code point.
const maxCodepoint = 0x110000

// replacementChar stands for each byte that does not start a valid UTF-8
// sequence, as in llama.cpp's unicode_cpts_from_utf8.
const replacementChar = 0xFFFD

var (
	cptFlagsOnce  sync.Once
	cptFlagsTable []uint16
)

// buildFlags expands the generated range table into one entry per code
// point, the same dense layout llama.cpp builds at start-up.
func buildFlags() {
	t := make([]uint16, maxCodepoint)
	for i := 0; i+2 < len(flagRanges); i += 2 {
		first, flags, next := flagRanges[i], uint16(flagRanges[i+1]), flagRanges[i+2]
		for cp := first; cp < next && cp < maxCodepoint; cp++ {
			t[cp] = flags
		}
	}
	for _, cp := range whitespaceCodepoints {
		t[cp] |= flagWhitespace
	}
	cptFlagsTable = t
}

// cptFlags returns the category flags of a code point; code points beyond
// Unicode are undefined.
func cptFlags(cp uint32) uint16 {
	cptFlagsOnce.Do(buildFlags)
	if cp >= maxCodepoint {
		return flagUndefined
	}
	return cptFlagsTable[cp]
}

// toLower maps a code point to lower case with llama.cpp's table (simple,
// one-to-one mappings only).
func toLower(cp uint32) uint32 {
	n := len(lowercasePairs) / 2
	i := sort.Search(n, func(i int) bool { return lowercasePairs[2*i] >= cp })
	if i < n && lowercasePairs[2*i] == cp {
		return lowercasePairs[2*i+1]
	}
	return cp
}

// nfdBase maps a code point to the first code point of its canonical
// decomposition, which is all llama.cpp's unicode_cpts_normalize_nfd keeps.
func nfdBase(cp uint32) uint32 {
	n := len(nfdRanges) / 3
	// last range whose first <= cp
	i := sort.Search(n, func(i int) bool { return nfdRanges[3*i] > cp }) - 1
	if i >= 0 && nfdRanges[3*i] <= cp && cp <= nfdRanges[3*i+1] {
		return nfdRanges[3*i+2]
	}
	return cp
}

// utf8SeqLen is the length of the UTF-8 sequence a lead byte announces,
// judged from its top four bits only (continuation bytes count as 1).
func utf8SeqLen(b byte) int {
	switch b >> 4 {
	case 0xC, 0xD:
		return 2
	case 0xE:
		return 3
	case 0xF:
		return 4
	}
	return 1
}

// decodeCodepoints splits UTF-8 text into code points the way llama.cpp
// does: lead and continuation bits are checked but not overlong forms or
// surrogates, and each byte that starts no valid sequence becomes U+FFFD.
func decodeCodepoints(s string) []uint32 {
	out := make([]uint32, 0, len(s))
	for i := 0; i < len(s); {
		cp, n := decodeOne(s, i)
		out = append(out, cp)
		i += n
	}
	return out
}

func decodeOne(s string, i int) (uint32, int) {
	b := s[i]
	cont := func(k int) bool { return i+k < len(s) && s[i+k]&0xC0 == 0x80 }
	switch {
	case b&0x80 == 0:
		return uint32(b), 1
	case b&0x40 == 0:
		return replacementChar, 1
	case b&0x20 == 0:
		if cont(1) {
			return uint32(b&0x1F)<<6 | uint32(s[i+1]&0x3F), 2
		}
	case b&0x10 == 0:
		if cont(1) && cont(2) {
			return uint32(b&0x0F)<<12 | uint32(s[i+1]&0x3F)<<6 | uint32(s[i+2]&0x3F), 3
		}
	case b&0x08 == 0:
		if cont(1) && cont(2) && cont(3) {
			return uint32(b&0x07)<<18 | uint32(s[i+1]&0x3F)<<12 | uint32(s[i+2]&0x3F)<<6 | uint32(s[i+3]&0x3F), 4
		}
	}
	return replacementChar, 1
}

// appendCodepoint appends the UTF-8 form of cp. Like llama.cpp it encodes
// surrogates as three bytes; code points beyond U+10FFFF are an error.
func appendCodepoint(dst []byte, cp uint32) ([]byte, error) {
	switch {
	case cp <= 0x7F:
		return append(dst, byte(cp)), nil
	case cp <= 0x7FF:
		return append(dst, 0xC0|byte(cp>>6), 0x80|byte(cp&0x3F)), nil
	case cp <= 0xFFFF:
		return append(dst, 0xE0|byte(cp>>12), 0x80|byte(cp>>6&0x3F), 0x80|byte(cp&0x3F)), nil
	case cp < maxCodepoint:
		return append(dst, 0xF0|byte(cp>>18), 0x80|byte(cp>>12&0x3F), 0x80|byte(cp>>6&0x3F), 0x80|byte(cp&0x3F)), nil
	}
	return dst, fmt.Errorf("invalid code point U+%X", cp)
}

// GPT-2's reversible byte-to-unicode table: printable Latin-1 bytes map to
// themselves, the rest to U+0100 upwards in byte order.
var (
	byteToUnicode [256]string
	unicodeToByte map[uint32]byte
)

func init() {
	unicodeToByte = make(map[uint32]byte, 256)
	next := uint32(256)
	for b := 0; b < 256; b++ {
		cp := uint32(b)
		printable := (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if !printable {
			cp = next
			next++
		}
		enc, _ := appendCodepoint(nil, cp)
		byteToUnicode[b] = string(enc)
		unicodeToByte[cp] = byte(b)
	}
}

// isSpaceASCII is C's isspace in the "C" locale.
func isSpaceASCII(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

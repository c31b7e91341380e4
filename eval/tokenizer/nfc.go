package tokenizer

import (
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// NFC normalisation (Unicode Standard Annex #15) for tokenizer.json's NFC
// normalizer: full canonical decomposition, canonical ordering of combining
// marks, then canonical composition. Tables: nfc_tables.go.

var nfcOnce sync.Once

var (
	nfcDecompMap map[rune][]rune
	nfcCompMap   map[[2]rune]rune
)

func nfcInit() {
	nfcDecompMap = make(map[rune][]rune, len(nfcDecomp)/3)
	for i := 0; i < len(nfcDecomp); {
		cp, n := rune(nfcDecomp[i]), int(nfcDecomp[i+1])
		parts := make([]rune, n)
		for k := range parts {
			parts[k] = rune(nfcDecomp[i+2+k])
		}
		nfcDecompMap[cp] = parts
		i += 2 + n
	}
	nfcCompMap = make(map[[2]rune]rune, len(nfcComp)/3)
	for i := 0; i+2 < len(nfcComp); i += 3 {
		nfcCompMap[[2]rune{rune(nfcComp[i]), rune(nfcComp[i+1])}] = rune(nfcComp[i+2])
	}
}

// combiningClass is a code point's canonical combining class.
func combiningClass(r rune) uint8 {
	n := len(nfcCCC) / 3
	i := sort.Search(n, func(i int) bool { return rune(nfcCCC[3*i+1]) >= r })
	if i < n && rune(nfcCCC[3*i]) <= r {
		return uint8(nfcCCC[3*i+2])
	}
	return 0
}

const (
	hangulSBase, hangulLBase, hangulVBase, hangulTBase = 0xAC00, 0x1100, 0x1161, 0x11A7
	hangulLCount, hangulVCount, hangulTCount           = 19, 21, 28
	hangulNCount                                       = hangulVCount * hangulTCount
	hangulSCount                                       = hangulLCount * hangulNCount
)

func decomposeFull(r rune, out []rune) []rune {
	if s := r - hangulSBase; s >= 0 && s < hangulSCount {
		out = append(out, hangulLBase+s/hangulNCount, hangulVBase+(s%hangulNCount)/hangulTCount)
		if t := s % hangulTCount; t != 0 {
			out = append(out, hangulTBase+t)
		}
		return out
	}
	if parts, ok := nfcDecompMap[r]; ok {
		for _, p := range parts {
			out = decomposeFull(p, out)
		}
		return out
	}
	return append(out, r)
}

// nfc returns s in Normalization Form C. Invalid UTF-8 bytes pass through
// as U+FFFD would not: they are kept as they are, outside any composition.
func nfc(s string) string {
	quick := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0xCC { // U+0300 and above: might not be NFC
			quick = false
			break
		}
	}
	if quick {
		return s
	}
	nfcOnce.Do(nfcInit)
	var b strings.Builder
	b.Grow(len(s))
	var seg []rune
	flush := func() {
		if len(seg) == 0 {
			return
		}
		var d []rune
		for _, r := range seg {
			d = decomposeFull(r, d)
		}
		// canonical ordering: stable sort of each run of non-starters
		for i := 0; i < len(d); {
			if combiningClass(d[i]) == 0 {
				i++
				continue
			}
			j := i
			for j < len(d) && combiningClass(d[j]) != 0 {
				j++
			}
			run := d[i:j]
			sort.SliceStable(run, func(a, c int) bool { return combiningClass(run[a]) < combiningClass(run[c]) })
			i = j
		}
		for _, r := range composeCanonical(d) {
			b.WriteRune(r)
		}
		seg = seg[:0]
	}
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			flush()
			b.WriteByte(s[i])
			i++
			continue
		}
		seg = append(seg, r)
		i += n
	}
	flush()
	return b.String()
}

// composeCanonical is the canonical composition algorithm over a
// decomposed, canonically ordered sequence.
func composeCanonical(d []rune) []rune {
	if len(d) == 0 {
		return d
	}
	out := d[:0:0]
	starter := -1
	var lastCCC uint8
	for _, r := range d {
		ccc := combiningClass(r)
		if starter >= 0 {
			s := out[starter]
			blocked := len(out)-1 != starter && (lastCCC == 0 || lastCCC >= ccc)
			if !blocked {
				if c, ok := composePair(s, r); ok {
					out[starter] = c
					continue
				}
			}
		}
		if ccc == 0 {
			starter = len(out)
		}
		lastCCC = ccc
		out = append(out, r)
	}
	return out
}

func composePair(a, b rune) (rune, bool) {
	if l := a - hangulLBase; l >= 0 && l < hangulLCount {
		if v := b - hangulVBase; v >= 0 && v < hangulVCount {
			return hangulSBase + (l*hangulVCount+v)*hangulTCount, true
		}
	}
	if s := a - hangulSBase; s >= 0 && s < hangulSCount && s%hangulTCount == 0 {
		if t := b - hangulTBase; t > 0 && t < hangulTCount {
			return a + t, true
		}
	}
	c, ok := nfcCompMap[[2]rune{a, b}]
	return c, ok
}

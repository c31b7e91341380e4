package tokenizer

import "strings"

// splitter is one pre-tokenizer stage. llama.cpp runs hand-written
// splitters for the GPT-2 and Llama 3 patterns and std::regex for the rest;
// a pattern using \p{..} classes then runs over category-collapsed text.
type splitter struct {
	expr      string
	custom    func(cpts []uint32, lengths []int) []int
	re        *regex
	collapsed bool
}

func newSplitter(expr string) (splitter, error) {
	s := splitter{expr: expr}
	switch expr {
	case reGPT2:
		s.custom = splitGPT2
		return s, nil
	case reLlama3, `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`:
		s.custom = splitLlama3
		return s, nil
	}
	for _, cat := range []string{`\p{N}`, `\p{L}`, `\p{P}`, `\p{M}`, `\p{S}`} {
		if strings.Contains(expr, cat) {
			s.collapsed = true
		}
	}
	re, err := compileRegex(expr)
	if err != nil {
		return s, err
	}
	s.re = re
	return s, nil
}

// collapseCategories maps each code point to one symbol, as llama.cpp does
// before running std::regex: ASCII stays, other whitespace becomes \v, and
// other code points become a byte naming their category (0xD1 number,
// 0xD2 letter, 0xD3 punctuation, 0xD4 mark, 0xD5 symbol, 0xD0 anything else).
func collapseCategories(cpts []uint32) []uint32 {
	out := make([]uint32, len(cpts))
	for i, cp := range cpts {
		if cp < 0x80 {
			out[i] = cp
			continue
		}
		f := cptFlags(cp)
		switch {
		case f&flagWhitespace != 0:
			out[i] = '\v'
		case f&flagCategories == flagNumber:
			out[i] = 0xD1
		case f&flagCategories == flagLetter:
			out[i] = 0xD2
		case f&flagCategories == flagPunctuation:
			out[i] = 0xD3
		case f&flagCategories == flagAccentMark:
			out[i] = 0xD4
		case f&flagCategories == flagSymbol:
			out[i] = 0xD5
		default:
			out[i] = 0xD0
		}
	}
	return out
}

// wideText is the code point text llama.cpp hands to std::wregex: non-ASCII
// whitespace becomes \v so that \s sees it.
func wideText(cpts []uint32) []uint32 {
	out := make([]uint32, len(cpts))
	for i, cp := range cpts {
		if cp > 0x7F && cptFlags(cp)&flagWhitespace != 0 {
			cp = '\v'
		}
		out[i] = cp
	}
	return out
}

// split refines the pieces given by lengths (code point counts) with this
// stage: matches and the gaps between them each become a piece.
func (s splitter) split(cpts, collapsed, wide []uint32, lengths []int) []int {
	if s.custom != nil {
		return s.custom(cpts, lengths)
	}
	in := wide
	if s.collapsed {
		in = collapsed
	}
	out := make([]int, 0, len(lengths))
	start := 0
	for _, n := range lengths {
		frag := in[start : start+n]
		last := 0
		for pos := 0; pos < n; {
			ms, me, ok := s.re.find(frag, pos)
			if !ok {
				break
			}
			if ms > last {
				out = append(out, ms-last)
			}
			last = ms
			if me == ms {
				// an empty match only cuts the text (std::regex would add an
				// empty piece, which tokenizes to nothing); step over one
				pos = ms + 1
				continue
			}
			out = append(out, me-ms)
			last, pos = me, me
		}
		if last < n {
			out = append(out, n-last)
		}
		start += n
	}
	return out
}

// cptCursor reads code points of one piece, with out-of-range positions
// reading as outOfRange with no flags.
type cptCursor struct {
	cpts     []uint32
	ini, end int
}

const outOfRange = 0xFFFFFFFF

func (c cptCursor) at(pos int) uint32 {
	if pos >= c.ini && pos < c.end {
		return c.cpts[pos]
	}
	return outOfRange
}

func (c cptCursor) flags(pos int) uint16 {
	if pos >= c.ini && pos < c.end {
		return cptFlags(c.cpts[pos])
	}
	return 0
}

// contraction is the length of an English contraction ('s 't 'm 'd 're 've
// 'll) starting at pos, or 0. Llama 3's pattern matches the letters in any
// case (anyCase), GPT-2's in lower case only.
func (c cptCursor) contraction(pos int, anyCase bool) int {
	if c.at(pos) != '\'' || pos+1 >= c.end {
		return 0
	}
	letter := func(p int) uint32 {
		if anyCase {
			return toLower(c.at(p))
		}
		return c.at(p)
	}
	next := letter(pos + 1)
	if next == 's' || next == 't' || next == 'm' || next == 'd' {
		return 2
	}
	if pos+2 < c.end {
		next2 := letter(pos + 2)
		if (next == 'r' && next2 == 'e') || (next == 'v' && next2 == 'e') || (next == 'l' && next2 == 'l') {
			return 3
		}
	}
	return 0
}

// optionalSpace is what " ?X" sees at pos: a space there joins the run
// that follows, so the flags are those of the code point after it and the
// space adds lead 1; otherwise pos's own flags and lead 0.
func (c cptCursor) optionalSpace(pos int) (f uint16, lead int) {
	if c.at(pos) == ' ' {
		return c.flags(pos + 1), 1
	}
	return c.flags(pos), 0
}

// skipFlagged returns the end of the run of code points from pos that have
// flag.
func (c cptCursor) skipFlagged(pos int, flag uint16) int {
	for c.flags(pos)&flag != 0 {
		pos++
	}
	return pos
}

// wordFlags are the classes [^\s\p{L}\p{N}] excludes.
const wordFlags = flagWhitespace | flagLetter | flagNumber

// skipSymbols returns the end of the run of code points from pos matching
// [^\s\p{L}\p{N}] (code points without any flag, and the end of the
// piece, stop it).
func (c cptCursor) skipSymbols(pos int) int {
	for g := c.flags(pos); g&wordFlags == 0 && g != 0; g = c.flags(pos) {
		pos++
	}
	return pos
}

// splitWords runs a pre-tokenizer pattern over each piece (lengths in code
// points) and returns the lengths of the words it marks. Both patterns
// start with the contractions 's|'t|'re|'ve|'m|'ll|'d (of any case when
// anyCase); at a position where none stands, word returns where the word
// starting there ends, first calling emit(end) at the end of any words it
// splits off. Ends increase; empty words are dropped.
func splitWords(cpts []uint32, lengths []int, anyCase bool, word func(c cptCursor, pos int, emit func(end int)) int) []int {
	out := make([]int, 0, len(lengths))
	start := 0
	for _, n := range lengths {
		prev := start
		emit := func(end int) {
			if end > prev {
				out = append(out, end-prev)
			}
			prev = end
		}
		c := cptCursor{cpts: cpts, ini: start, end: start + n}
		for pos := c.ini; pos < c.end; {
			if k := c.contraction(pos, anyCase); k > 0 {
				pos += k
			} else {
				pos = word(c, pos, emit)
			}
			emit(pos)
		}
		start += n
	}
	return out
}

// splitGPT2 is GPT-2's pattern
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
// (with llama.cpp's trailing \s+ fallback) as a hand-written scanner.
func splitGPT2(cpts []uint32, lengths []int) []int {
	return splitWords(cpts, lengths, false, func(c cptCursor, pos int, _ func(int)) int {
		// an optional leading space joins the following run
		f2, lead := c.optionalSpace(pos)
		switch {
		case f2&flagLetter != 0:
			return c.skipFlagged(pos+lead, flagLetter)
		case f2&flagNumber != 0:
			return c.skipFlagged(pos+lead, flagNumber)
		case f2&wordFlags == 0 && f2 != 0:
			return c.skipSymbols(pos + lead)
		}
		ws := c.skipFlagged(pos, flagWhitespace) - pos
		switch {
		case ws > 1 && c.at(pos+ws) != outOfRange:
			// \s+(?!\S): leave the last space to lead the next word
			return pos + ws - 1
		case ws > 0:
			return pos + ws
		}
		return pos + 1
	})
}

// splitLlama3 is Llama 3's pattern
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// as a hand-written scanner.
func splitLlama3(cpts []uint32, lengths []int) []int {
	isCRLF := func(cp uint32) bool { return cp == '\r' || cp == '\n' }
	return splitWords(cpts, lengths, true, func(c cptCursor, pos int, emit func(int)) int {
		cp, f := c.at(pos), c.flags(pos)
		// [^\r\n\p{L}\p{N}]?\p{L}+
		if !isCRLF(cp) && f&flagNumber == 0 && (f&flagLetter != 0 || c.flags(pos+1)&flagLetter != 0) {
			return c.skipFlagged(pos+1, flagLetter)
		}
		// \p{N}{1,3}
		if f&flagNumber != 0 {
			ini := pos
			for c.flags(pos)&flagNumber != 0 {
				pos++
				if pos-ini >= 3 {
					emit(pos)
					ini = pos
				}
			}
			return pos
		}
		// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
		if f2, lead := c.optionalSpace(pos); f2&wordFlags == 0 && f != 0 {
			pos = c.skipSymbols(pos + lead)
			for isCRLF(c.at(pos)) {
				pos++
			}
			return pos
		}
		ws := 0
		lastCRLF := -1 // position after the last \r or \n in the run
		for c.flags(pos+ws)&flagWhitespace != 0 {
			if isCRLF(c.at(pos + ws)) {
				lastCRLF = pos + ws + 1
			}
			ws++
		}
		switch {
		case lastCRLF >= 0: // \s*[\r\n]+
			return lastCRLF
		case ws > 1 && c.at(pos+ws) != outOfRange: // \s+(?!\S)
			return pos + ws - 1
		case ws > 0: // \s+
			return pos + ws
		}
		return pos + 1
	})
}

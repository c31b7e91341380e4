package tokenizer

import (
	"fmt"
	"strconv"
	"strings"
)

// A small backtracking regex engine for the pre-tokenizer patterns, with
// ECMAScript semantics as std::regex has them (leftmost match, ordered
// alternation, greedy quantifiers, lookahead), which Go's RE2-based regexp
// cannot express (`\s+(?!\S)`). It runs over code points (or over
// llama.cpp's category-collapsed code points, see collapseCategories).

type reOp int

const (
	opClass reOp = iota
	opSeq
	opAlt
	opRepeat
	opLook
	opBegin
	opEnd
)

type reNode struct {
	op       reOp
	class    *charClass
	subs     []*reNode
	min, max int // opRepeat; max < 0 means unbounded
	greedy   bool
	negate   bool // opLook: negative lookahead
}

// charClass matches one code point.
type charClass struct {
	ranges  [][2]uint32
	exclude []*charClass // matches when any of these does not (\S, \D, \W)
	negate  bool
}

func (c *charClass) matches(r uint32) bool {
	in := false
	for _, rg := range c.ranges {
		if rg[0] <= r && r <= rg[1] {
			in = true
			break
		}
	}
	if !in {
		for _, x := range c.exclude {
			if !x.matches(r) {
				in = true
				break
			}
		}
	}
	return in != c.negate
}

var (
	classSpace = &charClass{ranges: [][2]uint32{{'\t', '\r'}, {' ', ' '}}}
	classDigit = &charClass{ranges: [][2]uint32{{'0', '9'}}}
	classWord  = &charClass{ranges: [][2]uint32{{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}}
)

// Collapsed category codes and the ASCII members of each category, as in
// llama.cpp's unicode_regex_split.
var categoryClasses = map[string]struct {
	code  uint32
	ascii [][2]uint32
}{
	"N": {0xD1, [][2]uint32{{'0', '9'}}},
	"L": {0xD2, [][2]uint32{{'A', 'Z'}, {'a', 'z'}}},
	"P": {0xD3, [][2]uint32{{'!', '#'}, {'%', '*'}, {',', '/'}, {':', ';'}, {'?', '@'}, {'[', ']'}, {'_', '_'}, {'{', '{'}, {'}', '}'}}},
	"M": {0xD4, nil},
	"S": {0xD5, [][2]uint32{{'$', '$'}, {'+', '+'}, {'<', '>'}, {'^', '^'}, {'`', '`'}, {'|', '|'}}},
}

// regex is a compiled pattern.
type regex struct {
	root *reNode
}

type reParser struct {
	src []rune
	pos int
	// fold is set inside (?i:...): literal ASCII letters match either case
	// (the only use in tokenizer.json patterns is (?i:'s|'t|...)).
	fold bool
}

func compileRegex(pattern string) (*regex, error) {
	p := &reParser{src: []rune(pattern)}
	n, err := p.alt()
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", pattern, err)
	}
	if p.pos != len(p.src) {
		return nil, fmt.Errorf("regex %q: unexpected %q at %d", pattern, p.src[p.pos], p.pos)
	}
	return &regex{root: n}, nil
}

func (p *reParser) more() bool { return p.pos < len(p.src) }
func (p *reParser) peek() rune { return p.src[p.pos] }

// braced returns the text between the '{' at p.pos and the next '}', and
// the position of that '}'; ok is false when none closes it.
func (p *reParser) braced() (body string, end int, ok bool) {
	end = p.pos
	for end < len(p.src) && p.src[end] != '}' {
		end++
	}
	if end == len(p.src) {
		return "", end, false
	}
	return string(p.src[p.pos+1 : end]), end, true
}

func (p *reParser) alt() (*reNode, error) {
	var branches []*reNode
	for {
		s, err := p.seq()
		if err != nil {
			return nil, err
		}
		branches = append(branches, s)
		if p.more() && p.peek() == '|' {
			p.pos++
			continue
		}
		break
	}
	if len(branches) == 1 {
		return branches[0], nil
	}
	return &reNode{op: opAlt, subs: branches}, nil
}

func (p *reParser) seq() (*reNode, error) {
	var items []*reNode
	for p.more() && p.peek() != '|' && p.peek() != ')' {
		a, err := p.atom()
		if err != nil {
			return nil, err
		}
		a, err = p.quantifier(a)
		if err != nil {
			return nil, err
		}
		items = append(items, a)
	}
	if len(items) == 1 {
		return items[0], nil
	}
	return &reNode{op: opSeq, subs: items}, nil
}

func (p *reParser) quantifier(a *reNode) (*reNode, error) {
	if !p.more() {
		return a, nil
	}
	min, max := 0, 0
	switch p.peek() {
	case '?':
		min, max = 0, 1
	case '*':
		min, max = 0, -1
	case '+':
		min, max = 1, -1
	case '{':
		body, end, ok := p.braced()
		if !ok {
			return nil, fmt.Errorf("unterminated {")
		}
		lo, hi, comma := strings.Cut(body, ",")
		var err error
		if min, err = strconv.Atoi(lo); err != nil {
			return nil, fmt.Errorf("bad repeat {%s}", body)
		}
		switch {
		case !comma:
			max = min
		case hi == "":
			max = -1
		default:
			if max, err = strconv.Atoi(hi); err != nil || max < min {
				return nil, fmt.Errorf("bad repeat {%s}", body)
			}
		}
		p.pos = end
	default:
		return a, nil
	}
	p.pos++
	greedy := true
	if p.more() && p.peek() == '?' {
		greedy = false
		p.pos++
	}
	if a.op == opLook || a.op == opBegin || a.op == opEnd {
		return nil, fmt.Errorf("quantifier after an assertion")
	}
	return &reNode{op: opRepeat, subs: []*reNode{a}, min: min, max: max, greedy: greedy}, nil
}

func (p *reParser) atom() (*reNode, error) {
	c := p.peek()
	switch c {
	case '(':
		p.pos++
		look, negate, fold := false, false, p.fold
		if p.pos+1 < len(p.src) && p.src[p.pos] == '?' {
			switch p.src[p.pos+1] {
			case ':':
			case '=':
				look = true
			case '!':
				look, negate = true, true
			case 'i':
				if p.pos+2 >= len(p.src) || p.src[p.pos+2] != ':' {
					return nil, fmt.Errorf("unsupported group (?i%c", p.src[min(p.pos+2, len(p.src)-1)])
				}
				p.fold = true
				p.pos++
			default:
				return nil, fmt.Errorf("unsupported group (?%c", p.src[p.pos+1])
			}
			p.pos += 2
		}
		n, err := p.alt()
		p.fold = fold
		if err != nil {
			return nil, err
		}
		if !p.more() || p.peek() != ')' {
			return nil, fmt.Errorf("missing )")
		}
		p.pos++
		if look {
			return &reNode{op: opLook, subs: []*reNode{n}, negate: negate}, nil
		}
		return n, nil
	case '[':
		cl, err := p.bracket()
		if err != nil {
			return nil, err
		}
		return &reNode{op: opClass, class: cl}, nil
	case '^':
		p.pos++
		return &reNode{op: opBegin}, nil
	case '$':
		p.pos++
		return &reNode{op: opEnd}, nil
	case '.':
		p.pos++
		return &reNode{op: opClass, class: &charClass{ranges: [][2]uint32{{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}, negate: true}}, nil
	case '\\':
		cl, err := p.escape()
		if err != nil {
			return nil, err
		}
		return &reNode{op: opClass, class: cl}, nil
	case '*', '+', '?', '{':
		return nil, fmt.Errorf("nothing to repeat at %d", p.pos)
	}
	p.pos++
	cl := &charClass{ranges: [][2]uint32{{uint32(c), uint32(c)}}}
	if p.fold && ('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
		o := uint32(c) ^ 0x20 // the other ASCII case
		cl.ranges = append(cl.ranges, [2]uint32{o, o})
	}
	return &reNode{op: opClass, class: cl}, nil
}

// escape parses a backslash sequence into the class it denotes.
func (p *reParser) escape() (*charClass, error) {
	p.pos++ // backslash
	if !p.more() {
		return nil, fmt.Errorf("trailing backslash")
	}
	c := p.peek()
	p.pos++
	lit := func(r uint32) *charClass { return &charClass{ranges: [][2]uint32{{r, r}}} }
	switch c {
	case 's':
		return classSpace, nil
	case 'S':
		return &charClass{exclude: []*charClass{classSpace}}, nil
	case 'd':
		return classDigit, nil
	case 'D':
		return &charClass{exclude: []*charClass{classDigit}}, nil
	case 'w':
		return classWord, nil
	case 'W':
		return &charClass{exclude: []*charClass{classWord}}, nil
	case 'n':
		return lit('\n'), nil
	case 'r':
		return lit('\r'), nil
	case 't':
		return lit('\t'), nil
	case 'f':
		return lit('\f'), nil
	case 'v':
		return lit('\v'), nil
	case '0':
		return lit(0), nil
	case 'x', 'u':
		n := 2
		if c == 'u' {
			n = 4
		}
		if p.pos+n > len(p.src) {
			return nil, fmt.Errorf("short \\%c escape", c)
		}
		v, err := strconv.ParseUint(string(p.src[p.pos:p.pos+n]), 16, 32)
		if err != nil {
			return nil, fmt.Errorf("bad \\%c escape", c)
		}
		p.pos += n
		return lit(uint32(v)), nil
	case 'p':
		if !p.more() || p.peek() != '{' {
			return nil, fmt.Errorf("bad \\p")
		}
		name, end, ok := p.braced()
		if !ok {
			return nil, fmt.Errorf("unterminated \\p{")
		}
		p.pos = end + 1
		cat, ok := categoryClasses[name]
		if !ok {
			return nil, fmt.Errorf("unsupported category \\p{%s}", name)
		}
		cl := &charClass{ranges: append([][2]uint32{{cat.code, cat.code}}, cat.ascii...)}
		return cl, nil
	}
	return lit(uint32(c)), nil
}

// bracket parses [...] (the opening bracket is at p.pos).
func (p *reParser) bracket() (*charClass, error) {
	p.pos++
	cl := &charClass{}
	if p.more() && p.peek() == '^' {
		cl.negate = true
		p.pos++
	}
	first := true
	for {
		if !p.more() {
			return nil, fmt.Errorf("unterminated [")
		}
		c := p.peek()
		if c == ']' && !first {
			p.pos++
			return cl, nil
		}
		first = false
		var lo uint32
		if c == '\\' {
			sub, err := p.escape()
			if err != nil {
				return nil, err
			}
			if len(sub.ranges) != 1 || sub.ranges[0][0] != sub.ranges[0][1] || len(sub.exclude) > 0 || sub.negate {
				cl.ranges = append(cl.ranges, sub.ranges...)
				cl.exclude = append(cl.exclude, sub.exclude...)
				continue
			}
			lo = sub.ranges[0][0]
		} else {
			lo = uint32(c)
			p.pos++
		}
		hi := lo
		if p.pos+1 < len(p.src) && p.peek() == '-' && p.src[p.pos+1] != ']' {
			p.pos++
			if p.peek() == '\\' {
				sub, err := p.escape()
				if err != nil {
					return nil, err
				}
				if len(sub.ranges) != 1 || sub.ranges[0][0] != sub.ranges[0][1] {
					return nil, fmt.Errorf("bad range end")
				}
				hi = sub.ranges[0][0]
			} else {
				hi = uint32(p.peek())
				p.pos++
			}
			if hi < lo {
				return nil, fmt.Errorf("bad range %c-%c", rune(lo), rune(hi))
			}
		}
		cl.ranges = append(cl.ranges, [2]uint32{lo, hi})
	}
}

// matcher runs a regex over one input slice.
type matcher struct {
	in []uint32
}

func (m *matcher) match(n *reNode, pos int, k func(int) bool) bool {
	switch n.op {
	case opClass:
		return pos < len(m.in) && n.class.matches(m.in[pos]) && k(pos+1)
	case opSeq:
		return m.seq(n.subs, pos, k)
	case opAlt:
		for _, s := range n.subs {
			if m.match(s, pos, k) {
				return true
			}
		}
		return false
	case opRepeat:
		sub := n.subs[0]
		if sub.op == opClass {
			// single code point repeat: count the run, then try lengths
			limit := len(m.in) - pos
			if n.max >= 0 && n.max < limit {
				limit = n.max
			}
			run := 0
			for run < limit && sub.class.matches(m.in[pos+run]) {
				run++
			}
			if run < n.min {
				return false
			}
			if n.greedy {
				for c := run; c >= n.min; c-- {
					if k(pos + c) {
						return true
					}
				}
				return false
			}
			for c := n.min; c <= run; c++ {
				if k(pos + c) {
					return true
				}
			}
			return false
		}
		return m.repeat(n, 0, pos, k)
	case opLook:
		found := m.match(n.subs[0], pos, func(int) bool { return true })
		return found != n.negate && k(pos)
	case opBegin:
		return pos == 0 && k(pos)
	case opEnd:
		return pos == len(m.in) && k(pos)
	}
	return false
}

func (m *matcher) seq(subs []*reNode, pos int, k func(int) bool) bool {
	if len(subs) == 0 {
		return k(pos)
	}
	return m.match(subs[0], pos, func(p int) bool { return m.seq(subs[1:], p, k) })
}

func (m *matcher) repeat(n *reNode, count, pos int, k func(int) bool) bool {
	more := func() bool {
		if n.max >= 0 && count >= n.max {
			return false
		}
		return m.match(n.subs[0], pos, func(p int) bool {
			if p == pos {
				return false // an empty iteration cannot make progress
			}
			return m.repeat(n, count+1, p, k)
		})
	}
	if n.greedy {
		if more() {
			return true
		}
		return count >= n.min && k(pos)
	}
	if count >= n.min && k(pos) {
		return true
	}
	return more()
}

// find returns the leftmost match at or after from as [start, end).
func (r *regex) find(in []uint32, from int) (int, int, bool) {
	m := matcher{in: in}
	end := 0
	accept := func(p int) bool { end = p; return true }
	for s := from; s <= len(in); s++ {
		if m.match(r.root, s, accept) {
			return s, end, true
		}
	}
	return 0, 0, false
}

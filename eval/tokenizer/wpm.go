package tokenizer

import "fmt"

// encodeWPM is BERT's WordPiece as llama.cpp does it: normalise (first code
// point of the NFD decomposition, lower case, drop controls), split on
// whitespace and around punctuation and CJK ideographs, then cover each
// word, prefixed with ▁, by greedy longest vocabulary matches; a word that
// cannot be covered becomes the unknown token.
func (t *Tokenizer) encodeWPM(text string, out []int32) ([]int32, error) {
	words, err := wpmWords(text)
	if err != nil {
		return nil, err
	}
	for _, word := range words {
		w := "\u2581" + word
		n := len(w)
		mark := len(out)
		for i := 0; i < n; i++ {
			matched := false
			for j := min(n, i+t.maxTokenLen+1); j > i; j-- {
				if id, ok := t.ids[w[i:j]]; ok {
					out = append(out, id)
					matched = true
					i = j - 1
					break
				}
			}
			if !matched {
				out = out[:mark]
				break
			}
		}
		if len(out) == mark {
			out = append(out, t.unk)
		}
	}
	return out, nil
}

// wpmWords is llama.cpp's WPM pre-processing.
func wpmWords(text string) ([]string, error) {
	var words []string
	var cur []byte
	flush := func() {
		if len(cur) > 0 {
			words = append(words, string(cur))
			cur = cur[:0]
		}
	}
	for _, cp := range decodeCodepoints(text) {
		cp = nfdBase(cp)
		f := cptFlags(cp)
		if f&flagWhitespace != 0 {
			flush()
			continue
		}
		if cp == 0 || cp == replacementChar || f&flagControl != 0 {
			continue
		}
		lower, err := appendCodepoint(nil, toLower(cp))
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		if f&flagPunctuation != 0 || (cp < 0x7F && f&flagSymbol != 0) || isCJKIdeograph(cp) {
			flush()
			words = append(words, string(lower))
			continue
		}
		cur = append(cur, lower...)
	}
	flush()
	return words, nil
}

// isCJKIdeograph is BERT's _is_chinese_char range test (with the upstream
// Hugging Face bound 0x2B920).
func isCJKIdeograph(cp uint32) bool {
	return (cp >= 0x4E00 && cp <= 0x9FFF) ||
		(cp >= 0x3400 && cp <= 0x4DBF) ||
		(cp >= 0x20000 && cp <= 0x2A6DF) ||
		(cp >= 0x2A700 && cp <= 0x2B73F) ||
		(cp >= 0x2B740 && cp <= 0x2B81F) ||
		(cp >= 0x2B920 && cp <= 0x2CEAF) ||
		(cp >= 0xF900 && cp <= 0xFAFF) ||
		(cp >= 0x2F800 && cp <= 0x2FA1F)
}

package formats

import (
	"unicode"
	"unicode/utf8"
)

// Printable reports whether a string from a file can be shown as it is: at
// most n bytes of valid UTF-8 with no unprintable runes (terminal escapes,
// controls). Callers escape or quote anything else.
func Printable(s string, n int) bool {
	if len(s) > n || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

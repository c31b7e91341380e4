package formats

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// FormatError describes one malformed field of a model file. The GGUF and
// safetensors readers both report with it (each under its own name
// FormatError, with its own ErrFormat as Kind), so their errors print, clip
// and unwrap alike.
type FormatError struct {
	// Kind is the reading package's ErrFormat ("malformed GGUF"); errors.Is
	// finds it.
	Kind   error
	File   string
	Field  string
	Offset int64
	Msg    string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s: %v: %s at offset %d: %s", e.File, e.Kind, clip(e.Field), e.Offset, clip(e.Msg))
}

// Unwrap makes errors.Is(err, Kind) hold.
func (e *FormatError) Unwrap() error { return e.Kind }

// maxShown bounds the bytes of a file-supplied string put in an error.
const maxShown = 200

// clip makes a string from the file safe to print: non-printable bytes
// (terminal escapes, invalid UTF-8) are escaped and anything past maxShown
// bytes is cut, so a corrupt multi-megabyte name cannot flood the terminal.
func clip(s string) string {
	if Printable(s, maxShown) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if b.Len() >= maxShown {
			fmt.Fprintf(&b, "…(%d bytes in all)", len(s))
			break
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

package inspect

import (
	"fmt"
	"io"
	"os"

	"github.com/llqt/llqt/formats/gguf"
)

// maxProblems caps the list, so a file of a million broken tensors does not
// produce a million lines.
const maxProblems = 100

// verifyGGUF lists each structural problem of a GGUF file: the reader's own
// checks (gguf.Check), which go on past every problem that leaves the rest
// of the file readable.
func verifyGGUF(path string, size int64) (*Verdict, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return verifyReader(fh, size), nil
}

// verifyReader checks size bytes of GGUF from r.
func verifyReader(r io.ReaderAt, size int64) *Verdict {
	problems := gguf.Check(r, size, "")
	v := &Verdict{Problems: []string{}, OK: len(problems) == 0}
	for _, p := range problems[:min(len(problems), maxProblems)] {
		v.Problems = append(v.Problems, fmt.Sprintf("offset %d: %s: %s", p.Offset, safe(p.Field), safe(p.Msg)))
	}
	if len(problems) > maxProblems {
		v.Problems = append(v.Problems, fmt.Sprintf("… and %d more problems", len(problems)-maxProblems))
	}
	return v
}

package inspect

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/internal/cli"
)

// maxShown bounds how much of one metadata string is printed.
const maxShown = 80

// WriteText prints rep for a person: header, metadata, the tensor table,
// the summary line and, when present, the verification verdict.
func WriteText(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "file: %s\n", rep.Path)
	if rep.opened {
		switch rep.Format {
		case "gguf":
			fmt.Fprintf(w, "format: GGUF v%d, alignment %d, data at offset %d; shapes in ggml order (ne0 first)\n",
				rep.Version, rep.Alignment, rep.DataOffset)
		case "hf":
			fmt.Fprintln(w, "format: Hugging Face checkpoint (safetensors); shapes in torch order")
		default:
			fmt.Fprintln(w, "format: safetensors; shapes in torch order")
		}
		fmt.Fprintf(w, "\nmetadata (%d entries):\n", len(rep.Metadata))
		width := 0
		for _, m := range rep.Metadata {
			width = max(width, len(safe(m.Key)))
		}
		for _, m := range rep.Metadata {
			fmt.Fprintf(w, "  %-*s  %s\n", width, safe(m.Key), formatMeta(m))
		}
		fmt.Fprintln(w)
		hasHash := len(rep.Tensors) > 0 && rep.Tensors[0].SHA256 != ""
		hasFile := len(rep.Tensors) > 0 && rep.Tensors[0].File != ""
		header := []string{"name", "type", "shape", "bytes"}
		if hasFile {
			header = append(header, "file")
		}
		if hasHash {
			header = append(header, "sha256")
		}
		rows := make([][]string, 0, len(rep.Tensors))
		for _, t := range rep.Tensors {
			row := []string{safe(t.Name), safe(t.Type), formatShape(t.Shape), strconv.FormatUint(t.Bytes, 10)}
			if hasFile {
				row = append(row, safe(t.File))
			}
			if hasHash {
				row = append(row, t.SHA256)
			}
			rows = append(rows, row)
		}
		if err := cli.Table(w, header, rows); err != nil {
			return err
		}
		s := rep.Summary
		fmt.Fprintf(w, "%d tensors, %s parameters, file %s (%d bytes), %.2f bpw\n",
			s.Tensors, groupDigits(s.Parameters), humanBytes(s.FileSize), s.FileSize, s.BPW)
	} else if rep.Error != "" {
		fmt.Fprintf(w, "the reader rejects this file: %s\n", rep.Error)
	}
	if v := rep.Verify; v != nil {
		if v.OK {
			fmt.Fprintln(w, "verify: OK")
		} else {
			fmt.Fprintf(w, "verify: %d problem(s)\n", len(v.Problems))
			for _, p := range v.Problems {
				fmt.Fprintf(w, "  - %s\n", p)
			}
		}
	}
	return nil
}

func formatMeta(m Meta) string {
	if m.ElemType == "" {
		if m.Type == "null" {
			return "null"
		}
		return m.Type + "  " + formatValue(m.Value)
	}
	vals := make([]string, len(m.First))
	for i, v := range m.First {
		vals[i] = formatValue(v)
	}
	more := ""
	if m.Len > len(m.First) {
		more = ", …"
	}
	return fmt.Sprintf("array[%s] len %d  [%s%s]", m.ElemType, m.Len, strings.Join(vals, ", "), more)
}

func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case EscapedString:
		return `"` + string(x) + `"`
	case float64: // JSON numbers: 13638144, not 1.3638144e+07
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatFloat(x, 'f', -1, 64)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	s, isString := v.(string)
	if !isString {
		return fmt.Sprint(v)
	}
	if utf8.RuneCountInString(s) > maxShown {
		r := []rune(s)
		return strconv.Quote(string(r[:maxShown])) + fmt.Sprintf("… (%d bytes)", len(s))
	}
	return strconv.Quote(s)
}

// safe returns a key or name as is when it is short and printable, and
// quoted (escaping terminal controls and invalid UTF-8) and cut otherwise.
func safe(s string) string {
	if formats.Printable(s, maxShown) {
		return s
	}
	if len(s) > maxShown {
		return strconv.Quote(s[:maxShown]) + fmt.Sprintf("… (%d bytes)", len(s))
	}
	return strconv.Quote(s)
}

func formatShape(shape []uint64) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.FormatUint(d, 10)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func groupDigits(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", f, []string{"B", "KiB", "MiB", "GiB", "TiB"}[i])
}

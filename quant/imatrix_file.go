package quant

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/llqt/llqt/formats/gguf"
)

// Imatrix is an importance matrix as llama-quantize uses it: for each weight
// tensor, one non-negative weight per input column (ne0, times the number of
// experts for 3-D tensors), the mean squared activation seen by that column.
type Imatrix struct {
	// Weights maps tensor names to their weights, already divided by the
	// number of calls as llama-quantize's load_imatrix does.
	Weights map[string][]float32
	// Chunks is the number of chunks the matrix was computed on (-1 when
	// the file does not say), Dataset the text it was computed from.
	Chunks  int32
	Dataset string
}

// ReadImatrix loads an importance matrix: b4748's binary "imatrix.dat"
// format, or current llama.cpp's GGUF imatrix (weights Σx²/rows).
func ReadImatrix(path string) (*Imatrix, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("imatrix: %w", err)
	}
	var m *Imatrix
	if bytes.HasPrefix(data, []byte("GGUF")) {
		m, err = parseImatrixGGUF(path, data)
	} else {
		m, err = ParseImatrix(data)
	}
	if err != nil {
		return nil, fmt.Errorf("imatrix %s: %w", path, err)
	}
	return m, nil
}

// parseImatrixGGUF reads a GGUF imatrix: each NAME.in_sum2 divided by
// NAME.counts; chunks and the first dataset from the metadata.
func parseImatrixGGUF(path string, data []byte) (*Imatrix, error) {
	s := NewImatrixStats()
	if err := s.addGGUF(path, data); err != nil {
		return nil, err
	}
	m := &Imatrix{Weights: map[string][]float32{}, Chunks: -1}
	for name, e := range s.entries {
		w := make([]float32, len(e.gsum2))
		for j, v := range e.gsum2 {
			w[j] = v / float32(e.rows)
			if !finite(w[j]) {
				return nil, fmt.Errorf("%s: value %d is %v", name, j, w[j])
			}
		}
		m.Weights[name] = w
	}
	f, err := gguf.Parse(bytes.NewReader(data), int64(len(data)), path)
	if err != nil {
		return nil, err
	}
	if n, ok := f.KV.Uint(imatrixKeyChunkCount); ok {
		m.Chunks = int32(n)
	}
	if len(s.Datasets) > 0 {
		m.Dataset = s.Datasets[0]
	}
	return m, nil
}

// legacyImatrix is a legacy file's content as stored.
type legacyImatrix struct {
	entries []legacyEntry
	chunks  int32 // -1 when the file does not say
	dataset string
}

type legacyEntry struct {
	name   string
	ncall  int32
	values []float32 // mean × ncall
}

// ParseImatrix decodes llama-imatrix's binary format: int32 entry count;
// per entry int32 name length, the name, int32 ncall, int32 nval and nval
// float32 (mean × ncall); then optionally int32 chunk count, int32 dataset
// name length and the dataset name. All integers are little endian.
func ParseImatrix(data []byte) (*Imatrix, error) {
	l, err := parseImatrixEntries(data)
	if err != nil {
		return nil, err
	}
	m := &Imatrix{Weights: map[string][]float32{}, Chunks: l.chunks, Dataset: l.dataset}
	for _, e := range l.entries {
		w := make([]float32, len(e.values))
		for j, v := range e.values {
			if e.ncall > 0 {
				v /= float32(e.ncall)
			}
			if !finite(v) {
				return nil, fmt.Errorf("entry %s: value %d is %v", e.name, j, v)
			}
			w[j] = v
		}
		m.Weights[e.name] = w
	}
	return m, nil
}

func parseImatrixEntries(data []byte) (*legacyImatrix, error) {
	off := 0
	i32 := func(what string) (int32, error) {
		if len(data)-off < 4 {
			return 0, fmt.Errorf("truncated at offset %d reading %s", off, what)
		}
		v := int32(binary.LittleEndian.Uint32(data[off:]))
		off += 4
		return v, nil
	}
	take := func(n int, what string) ([]byte, error) {
		if n < 0 || len(data)-off < n {
			return nil, fmt.Errorf("truncated at offset %d reading %s (%d bytes)", off, what, n)
		}
		b := data[off : off+n]
		off += n
		return b, nil
	}
	n, err := i32("entry count")
	if err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("no entries (count %d)", n)
	}
	m := &legacyImatrix{chunks: -1}
	for i := int32(0); i < n; i++ {
		l, err := i32("name length")
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		nb, err := take(int(l), "name")
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		// llama-quantize reads the name as a C string.
		if z := bytes.IndexByte(nb, 0); z >= 0 {
			nb = nb[:z]
		}
		name := string(nb)
		ncall, err := i32("ncall")
		if err != nil {
			return nil, fmt.Errorf("entry %d (%s): %w", i, name, err)
		}
		nval, err := i32("value count")
		if err != nil {
			return nil, fmt.Errorf("entry %d (%s): %w", i, name, err)
		}
		if nval < 1 {
			return nil, fmt.Errorf("entry %d (%s): %d values", i, name, nval)
		}
		if int64(nval)*4 > int64(len(data)-off) {
			return nil, fmt.Errorf("entry %d (%s): truncated at offset %d reading %d values", i, name, off, nval)
		}
		raw, _ := take(int(nval)*4, "values")
		vals := make([]float32, nval)
		for j := range vals {
			vals[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
		}
		m.entries = append(m.entries, legacyEntry{name: name, ncall: ncall, values: vals})
	}
	if off < len(data) {
		chunks, err := i32("chunk count")
		if err != nil {
			return nil, err
		}
		dl, err := i32("dataset name length")
		if err != nil {
			return nil, err
		}
		ds, err := take(int(dl), "dataset name")
		if err != nil {
			return nil, err
		}
		m.chunks, m.dataset = chunks, string(ds)
	}
	return m, nil
}

// Filter keeps the entries whose names contain one of include (all when
// include is empty) and then drops those containing one of exclude, as
// llama-quantize's --include-weights and --exclude-weights do.
func (m *Imatrix) Filter(include, exclude []string) {
	for name := range m.Weights {
		keep := len(include) == 0
		for _, s := range include {
			keep = keep || strings.Contains(name, s)
		}
		for _, s := range exclude {
			if strings.Contains(name, s) {
				keep = false
			}
		}
		if !keep {
			delete(m.Weights, name)
		}
	}
}

// For returns the weights of tensor name with ne0 columns and ne2 experts
// (1 for a plain matrix), or nil when the matrix has no entry for it. A
// size mismatch is an error, except for token_embd.weight, which
// llama-quantize then quantizes without weights.
func (m *Imatrix) For(name string, ne0, ne2 int) ([]float32, error) {
	if m == nil {
		return nil, nil
	}
	w, ok := m.Weights[name]
	if !ok {
		return nil, nil
	}
	if len(w) != ne0*ne2 {
		if name == "token_embd.weight" {
			return nil, nil
		}
		return nil, fmt.Errorf("imatrix: %d weights for %s, which has %d×%d columns", len(w), name, ne0, ne2)
	}
	return w, nil
}

// ImatrixEntry is one tensor's statistics as llama-imatrix stores them.
type ImatrixEntry struct {
	Name  string
	NCall int32
	// Values are the mean squared activations times NCall, as in the file.
	Values []float32
}

// WriteImatrix writes entries in llama-imatrix's binary format, in name
// order, followed by the chunk count and dataset name.
func WriteImatrix(w io.Writer, entries []ImatrixEntry, chunks int32, dataset string) error {
	sorted := append([]ImatrixEntry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var buf bytes.Buffer
	put := func(v int32) { _ = binary.Write(&buf, binary.LittleEndian, v) }
	put(int32(len(sorted)))
	for _, e := range sorted {
		put(int32(len(e.Name)))
		buf.WriteString(e.Name)
		put(e.NCall)
		put(int32(len(e.Values)))
		_ = binary.Write(&buf, binary.LittleEndian, e.Values)
	}
	put(chunks)
	put(int32(len(dataset)))
	buf.WriteString(dataset)
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("imatrix: %w", err)
	}
	return nil
}

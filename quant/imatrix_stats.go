package quant

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
)

// ImatrixStats accumulates what llama-imatrix collects for an importance
// matrix: for every weight tensor, the per-column sums of the squared (and
// plain) activations that met it, over how many activation rows and
// products. It writes b4748's legacy imatrix.dat and current llama.cpp's
// GGUF imatrix, and reads both back to combine them (--in-file).
//
// The arithmetic is llama-imatrix's: float32 sums updated row by row, and
// the legacy file's values Σx²/count·ncall computed in float32, so that a
// run over the same activations writes the same numbers.
type ImatrixStats struct {
	entries map[string]*imatrixEntry
	// LastCall is the largest number of products seen by one tensor: the
	// chunk count when each chunk is one product per tensor. b4748 writes it
	// as last_call; it stays 0 when matrices are only combined from files.
	LastCall int32
	// Datasets are the texts of the files combined into these statistics
	// (from their metadata), in order.
	Datasets []string
}

// imatrixEntry is one tensor's statistics, kept twice where the two formats
// disagree: b4748's state (sum2, counts) adds a legacy file's stored values
// and calls as they are, so counts mix rows and calls exactly as b4748 does;
// the GGUF state (gsum2, rows) scales a legacy file back to rows with the
// chunk size, as current llama.cpp does. They are equal for collected data.
type imatrixEntry struct {
	sum2, counts []float32 // b4748: Σx² and count per column
	gsum2, gsum  []float32 // GGUF: Σx² and Σx per column
	rows         int64     // GGUF counts: activation rows
	ncall        int32
}

func newImatrixEntry(cols int) *imatrixEntry {
	return &imatrixEntry{sum2: make([]float32, cols), counts: make([]float32, cols),
		gsum2: make([]float32, cols), gsum: make([]float32, cols)}
}

// NewImatrixStats returns empty statistics.
func NewImatrixStats() *ImatrixStats {
	return &ImatrixStats{entries: map[string]*imatrixEntry{}}
}

// Len is the number of tensors with statistics.
func (s *ImatrixStats) Len() int { return len(s.entries) }

// Names lists the tensors with statistics, sorted.
func (s *ImatrixStats) Names() []string {
	names := make([]string, 0, len(s.entries))
	for n := range s.entries {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// NCall is the number of products collected for name (0 if none).
func (s *ImatrixStats) NCall(name string) int32 {
	if e := s.entries[name]; e != nil {
		return e.ncall
	}
	return 0
}

// Add accumulates one product's input: rows activation rows of cols values
// each, the input of tensor name. It fails on a column count that differs
// from the tensor's earlier products, and on a sum that stops being finite
// (llama-imatrix's "nan detected" stop), naming the tensor.
func (s *ImatrixStats) Add(name string, x []float32, rows, cols int) error {
	e := s.entries[name]
	if e == nil {
		e = newImatrixEntry(cols)
		s.entries[name] = e
	}
	if len(e.sum2) != cols {
		return fmt.Errorf("imatrix: %s has %d columns, earlier products had %d", name, cols, len(e.sum2))
	}
	e.ncall++
	sum2, gsum2, gsum := e.sum2, e.gsum2, e.gsum
	for r := range rows {
		row := x[r*cols : (r+1)*cols]
		for j, v := range row {
			sum2[j] += v * v
			gsum2[j] += v * v
			gsum[j] += v
		}
	}
	for j := range sum2 {
		if math.IsNaN(float64(sum2[j])) || math.IsInf(float64(sum2[j]), 0) {
			return fmt.Errorf("imatrix: %v detected in the activations of %s (column %d)", sum2[j], name, j)
		}
		e.counts[j] += float32(rows)
	}
	e.rows += int64(rows)
	s.LastCall = max(s.LastCall, e.ncall)
	return nil
}

// legacyValues are an entry's values as b4748's save_imatrix writes them.
func (e *imatrixEntry) legacyValues() []float32 {
	out := make([]float32, len(e.sum2))
	for j, v := range e.sum2 {
		out[j] = v / e.counts[j] * float32(e.ncall)
	}
	return out
}

// Imatrix returns the importance weights the statistics stand for, as
// llama-quantize would read them from the legacy file.
func (s *ImatrixStats) Imatrix(dataset string) *Imatrix {
	m := &Imatrix{Weights: map[string][]float32{}, Chunks: s.LastCall, Dataset: dataset}
	for name, e := range s.entries {
		w := e.legacyValues()
		for j := range w {
			w[j] /= float32(e.ncall)
		}
		m.Weights[name] = w
	}
	return m
}

// WriteDat writes b4748's legacy imatrix.dat (see ParseImatrix) with the
// entries in name order, then LastCall and dataset (the -f argument as
// given).
func (s *ImatrixStats) WriteDat(w io.Writer, dataset string) error {
	var entries []ImatrixEntry
	for _, name := range s.Names() {
		e := s.entries[name]
		entries = append(entries, ImatrixEntry{Name: name, NCall: e.ncall, Values: e.legacyValues()})
	}
	return WriteImatrix(w, entries, s.LastCall, dataset)
}

// GGUF keys of current llama.cpp's imatrix files.
const (
	imatrixKeyDatasets   = "imatrix.datasets"
	imatrixKeyChunkCount = "imatrix.chunk_count"
	imatrixKeyChunkSize  = "imatrix.chunk_size"
)

// GGUFModel returns the statistics as current llama.cpp's GGUF imatrix:
// general.type "imatrix", imatrix.datasets (the combined files' datasets,
// then dataset if not empty), imatrix.chunk_count (rows/chunkSize of the
// most-seen tensor) and imatrix.chunk_size, then per tensor in name order
// NAME.in_sum2 [ne0, 1] (Σx²), NAME.counts [1, 1] (rows) and NAME.in_sum
// [ne0, 1] (Σx), all F32.
func (s *ImatrixStats) GGUFModel(dataset string, chunkSize int) *formats.Model {
	datasets := append([]string{}, s.Datasets...)
	if dataset != "" {
		datasets = append(datasets, dataset)
	}
	var maxRows int64
	for _, e := range s.entries {
		maxRows = max(maxRows, e.rows)
	}
	chunks := uint32(0)
	if chunkSize > 0 {
		chunks = uint32(maxRows / int64(chunkSize))
	}
	m := &formats.Model{}
	m.KV.Set("general.type", "imatrix")
	m.KV.Set(imatrixKeyDatasets, formats.Array{Elem: formats.ValString, Values: datasets})
	m.KV.Set(imatrixKeyChunkCount, chunks)
	m.KV.Set(imatrixKeyChunkSize, uint32(chunkSize))
	for _, name := range s.Names() {
		e := s.entries[name]
		ne0 := uint64(len(e.sum2))
		m.Tensors = append(m.Tensors,
			&formats.Tensor{Name: name + ".in_sum2", Shape: []uint64{ne0, 1}, Type: ggml.TypeF32, Source: formats.F32Source(e.gsum2)},
			&formats.Tensor{Name: name + ".counts", Shape: []uint64{1, 1}, Type: ggml.TypeF32, Source: formats.F32Source([]float32{float32(e.rows)})},
			&formats.Tensor{Name: name + ".in_sum", Shape: []uint64{ne0, 1}, Type: ggml.TypeF32, Source: formats.F32Source(e.gsum)},
		)
	}
	return m
}

// WriteGGUF writes GGUFModel(dataset, chunkSize) to w.
func (s *ImatrixStats) WriteGGUF(ctx context.Context, w io.Writer, dataset string, chunkSize int) error {
	return gguf.Write(ctx, w, s.GGUFModel(dataset, chunkSize), gguf.WriteOptions{Threads: 1})
}

// AddFile combines an imatrix file into the statistics, legacy or GGUF, as
// llama-imatrix --in-file does: a legacy entry adds its values (mean·ncall)
// and ncall to both the sums and the counts, so that the file written after
// combining holds the ncall-weighted mean; a GGUF entry adds its sums and
// row counts. chunkSize converts a legacy file's calls into rows for the GGUF
// output (llama-imatrix's n_ctx).
func (s *ImatrixStats) AddFile(path string, chunkSize int) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("imatrix: %w", err)
	}
	if bytes.HasPrefix(data, []byte("GGUF")) {
		return s.addGGUF(path, data)
	}
	legacy, err := parseImatrixEntries(data)
	if err != nil {
		return fmt.Errorf("imatrix %s: %w", path, err)
	}
	for _, le := range legacy.entries {
		e := s.entries[le.name]
		if e == nil {
			e = newImatrixEntry(len(le.values))
			s.entries[le.name] = e
		}
		if len(e.sum2) != len(le.values) {
			return fmt.Errorf("imatrix %s: %s has %d values, earlier data had %d", path, le.name, len(le.values), len(e.sum2))
		}
		for j, v := range le.values {
			e.sum2[j] += v
			e.counts[j] += float32(le.ncall)
			e.gsum2[j] += v * float32(chunkSize)
		}
		e.ncall += le.ncall
		e.rows += int64(le.ncall) * int64(chunkSize)
	}
	if legacy.dataset != "" {
		s.Datasets = append(s.Datasets, legacy.dataset)
	}
	return nil
}

func (s *ImatrixStats) addGGUF(path string, data []byte) error {
	f, err := gguf.Parse(bytes.NewReader(data), int64(len(data)), path)
	if err != nil {
		return err
	}
	if v, ok := f.KV.Get(imatrixKeyDatasets); ok {
		if a, ok := v.(formats.Array); ok {
			if ds, ok := a.Values.([]string); ok {
				s.Datasets = append(s.Datasets, ds...)
			}
		}
	}
	chunkSize, _ := f.KV.Uint(imatrixKeyChunkSize)
	read := func(name string) ([]float32, error) {
		ti, ok := f.Tensor(name)
		if !ok {
			return nil, fmt.Errorf("%s: no tensor %s", path, name)
		}
		if ti.Type != ggml.TypeF32 {
			return nil, fmt.Errorf("%s: tensor %s is %v, want F32", path, name, ti.Type)
		}
		raw, err := f.Data(ti)
		if err != nil {
			return nil, err
		}
		v := make([]float32, len(raw)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return v, nil
	}
	found := 0
	for _, ti := range f.Tensors {
		name, ok := strings.CutSuffix(ti.Name, ".in_sum2")
		if !ok {
			continue
		}
		found++
		sum2, err := read(ti.Name)
		if err != nil {
			return err
		}
		counts, err := read(name + ".counts")
		if err != nil {
			return err
		}
		if len(counts) != 1 {
			return fmt.Errorf("%s: %s has %d matrices; per-expert statistics are not supported", path, name, len(counts))
		}
		var sum []float32
		if _, ok := f.Tensor(name + ".in_sum"); ok {
			if sum, err = read(name + ".in_sum"); err != nil {
				return err
			}
		}
		if sum != nil && len(sum) != len(sum2) {
			return fmt.Errorf("%s: %s.in_sum has %d values, in_sum2 %d", path, name, len(sum), len(sum2))
		}
		rows := counts[0]
		if rows < 0 || rows != float32(int64(rows)) {
			return fmt.Errorf("%s: %s.counts is %v, not a row count", path, name, rows)
		}
		e := s.entries[name]
		if e == nil {
			e = newImatrixEntry(len(sum2))
			s.entries[name] = e
		}
		if len(e.sum2) != len(sum2) {
			return fmt.Errorf("imatrix %s: %s has %d values, earlier data had %d", path, name, len(sum2), len(e.sum2))
		}
		calls := int32(1)
		if chunkSize > 0 {
			calls = int32((int64(rows) + int64(chunkSize) - 1) / int64(chunkSize))
		}
		for j, v := range sum2 {
			e.sum2[j] += v
			e.counts[j] += rows
			e.gsum2[j] += v
			if sum != nil {
				e.gsum[j] += sum[j]
			}
		}
		e.rows += int64(rows)
		e.ncall += calls
	}
	if found == 0 {
		return fmt.Errorf("%s: no imatrix tensors (*.in_sum2)", path)
	}
	return nil
}

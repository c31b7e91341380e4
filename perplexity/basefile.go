package perplexity

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// The "_logits_" base file, as llama-perplexity --kl-divergence-base writes
// it (all little-endian):
//
//	char[8]  "_logits_"
//	u32      n_ctx
//	i32      n_vocab
//	i32      n_chunk
//	i32      tokens[n_ctx·n_chunk]   the text's tokens, before BOS replacement
//	then for each chunk, for each of its n_ctx−1−n_ctx/2 scored positions,
//	u16      row[2·((n_vocab+1)/2)+4]: f32 scale, f32 min log-prob, then
//	         n_vocab quantized log-probs (and one zero when n_vocab is odd).
const baseMagic = "_logits_"

// baseHeaderSize is the size of the fixed part of the header.
const baseHeaderSize = 8 + 4 + 4 + 4

// Limits that keep a corrupt header from asking for absurd allocations; they
// are far above any real model (vocabularies are ≤ 2^18, contexts ≤ 2^21).
const (
	maxBaseVocab = 1 << 21
	maxBaseCtx   = 1 << 23
)

// ErrBaseFormat marks a base file that is not a valid "_logits_" file.
var ErrBaseFormat = errors.New("not a valid llama.cpp _logits_ file")

// BaseFormatError says what is wrong with a base file and where.
type BaseFormatError struct {
	File   string
	Offset int64
	Msg    string
}

func (e *BaseFormatError) Error() string {
	return fmt.Sprintf("%s: at byte %d: %s", e.File, e.Offset, e.Msg)
}

func (e *BaseFormatError) Unwrap() error { return ErrBaseFormat }

// scoredPerChunk is the number of positions each chunk scores.
func scoredPerChunk(nCtx int) int { return nCtx - 1 - nCtx/2 }

// BaseFileSize is the exact size of a base file with these dimensions.
func BaseFileSize(nCtx, nVocab, nChunk int) int64 {
	return baseHeaderSize + 4*int64(nCtx)*int64(nChunk) +
		int64(nChunk)*int64(scoredPerChunk(nCtx))*int64(rowLen(nVocab))*2
}

// BaseWriter streams a base file: the header at creation, then each chunk's
// rows as they are computed.
type BaseWriter struct {
	w       *bufio.Writer
	nCtx    int
	nVocab  int
	nChunk  int
	chunks  int
	scratch []byte
}

// NewBaseWriter writes the header for tokens (n_ctx·n_chunk of them, the
// text's tokens as tokenized, before the first of each chunk becomes BOS).
func NewBaseWriter(w io.Writer, nCtx, nVocab int, tokens []int32) (*BaseWriter, error) {
	if nCtx < 2 || nCtx > maxBaseCtx {
		return nil, fmt.Errorf("base file: n_ctx %d out of range", nCtx)
	}
	if nVocab < 1 || nVocab > maxBaseVocab {
		return nil, fmt.Errorf("base file: n_vocab %d out of range", nVocab)
	}
	if len(tokens)%nCtx != 0 {
		return nil, fmt.Errorf("base file: %d tokens is not a whole number of %d-token chunks", len(tokens), nCtx)
	}
	bw := &BaseWriter{w: bufio.NewWriterSize(w, 1<<20), nCtx: nCtx, nVocab: nVocab, nChunk: len(tokens) / nCtx}
	hdr := make([]byte, 0, baseHeaderSize+4*len(tokens))
	hdr = append(hdr, baseMagic...)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(nCtx))
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(int32(nVocab)))
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(int32(bw.nChunk)))
	for _, t := range tokens {
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(t))
	}
	if _, err := bw.w.Write(hdr); err != nil {
		return nil, fmt.Errorf("base file: writing header: %w", err)
	}
	return bw, nil
}

// WriteChunk appends one chunk's rows: scoredPerChunk(n_ctx) rows of
// rowLen(n_vocab) values, back to back.
func (bw *BaseWriter) WriteChunk(rows []uint16) error {
	want := scoredPerChunk(bw.nCtx) * rowLen(bw.nVocab)
	if len(rows) != want {
		return fmt.Errorf("base file: chunk %d has %d values, want %d", bw.chunks, len(rows), want)
	}
	if bw.chunks >= bw.nChunk {
		return fmt.Errorf("base file: header promised %d chunks, writing one more", bw.nChunk)
	}
	if cap(bw.scratch) < 2*len(rows) {
		bw.scratch = make([]byte, 2*len(rows))
	}
	buf := bw.scratch[:2*len(rows)]
	for i, v := range rows {
		binary.LittleEndian.PutUint16(buf[2*i:], v)
	}
	if _, err := bw.w.Write(buf); err != nil {
		return fmt.Errorf("base file: writing chunk %d: %w", bw.chunks, err)
	}
	bw.chunks++
	return nil
}

// Close flushes the file; it fails when fewer chunks were written than the
// header promised (the file would be unreadable).
func (bw *BaseWriter) Close() error {
	if err := bw.w.Flush(); err != nil {
		return fmt.Errorf("base file: %w", err)
	}
	if bw.chunks != bw.nChunk {
		return fmt.Errorf("base file: wrote %d of the %d chunks the header promises", bw.chunks, bw.nChunk)
	}
	return nil
}

// BaseReader streams a base file chunk by chunk.
type BaseReader struct {
	NCtx   int
	NVocab int
	NChunk int
	// Tokens are the n_ctx·n_chunk tokens of the text, as stored.
	Tokens []int32

	name    string
	r       io.Reader
	closer  io.Closer
	offset  int64
	chunk   int
	scratch []byte
}

// OpenBase opens a base file and reads its header; the file's size must be
// exactly what the header implies.
func OpenBase(path string) (*BaseReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("KL-divergence base file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("KL-divergence base file: %w", err)
	}
	br, err := NewBaseReader(bufio.NewReaderSize(f, 1<<20), st.Size(), path)
	if err != nil {
		f.Close()
		return nil, err
	}
	br.closer = f
	return br, nil
}

// NewBaseReader reads the header from r. size is the total size of the
// stream, or −1 when unknown; when known it must match the header exactly.
func NewBaseReader(r io.Reader, size int64, name string) (*BaseReader, error) {
	br := &BaseReader{name: name, r: r}
	var hdr [baseHeaderSize]byte
	n, err := io.ReadFull(r, hdr[:])
	if string(hdr[:min(n, 8)]) != baseMagic[:min(n, 8)] {
		return nil, br.fail("does not start with %q: not a KL-divergence base file (make one with --kl-divergence-base)", baseMagic)
	}
	if err != nil {
		return nil, br.fail("file ends inside the %d-byte header (%d bytes read)", baseHeaderSize, n)
	}
	nCtx := binary.LittleEndian.Uint32(hdr[8:])
	nVocab := int32(binary.LittleEndian.Uint32(hdr[12:]))
	nChunk := int32(binary.LittleEndian.Uint32(hdr[16:]))
	br.offset = baseHeaderSize
	if nCtx < 2 || nCtx > maxBaseCtx {
		return nil, br.failAt(8, "n_ctx %d out of range", nCtx)
	}
	if nVocab < 1 || nVocab > maxBaseVocab {
		return nil, br.failAt(12, "n_vocab %d out of range", nVocab)
	}
	if nChunk < 0 {
		return nil, br.failAt(16, "negative n_chunk %d", nChunk)
	}
	br.NCtx, br.NVocab, br.NChunk = int(nCtx), int(nVocab), int(nChunk)
	if size >= 0 {
		if want := BaseFileSize(br.NCtx, br.NVocab, br.NChunk); size != want {
			what := "truncated"
			if size > want {
				what = "has trailing bytes"
			}
			return nil, br.failAt(0, "%s: %d bytes, but n_ctx %d, n_vocab %d, n_chunk %d need exactly %d",
				what, size, br.NCtx, br.NVocab, br.NChunk, want)
		}
	}
	// Read the tokens in slices so that a lying header on a stream of
	// unknown size cannot make us allocate more than the data present.
	nTok := int64(br.NCtx) * int64(br.NChunk)
	const step = 1 << 18
	buf := make([]byte, 4*min(nTok, step))
	for done := int64(0); done < nTok; {
		n := min(nTok-done, step)
		b := buf[:4*n]
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, br.fail("file ends inside the token list (%d of %d tokens read)", done, nTok)
		}
		for i := int64(0); i < n; i++ {
			t := int32(binary.LittleEndian.Uint32(b[4*i:]))
			if t < 0 || int(t) >= br.NVocab {
				return nil, br.failAt(br.offset+4*i, "token %d is %d, outside the vocabulary of %d", done+i, t, br.NVocab)
			}
			br.Tokens = append(br.Tokens, t)
		}
		br.offset += 4 * n
		done += n
	}
	return br, nil
}

func (br *BaseReader) fail(format string, args ...any) error {
	return br.failAt(br.offset, format, args...)
}

func (br *BaseReader) failAt(off int64, format string, args ...any) error {
	return &BaseFormatError{File: br.name, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// RowLen is the number of uint16 values per scored position.
func (br *BaseReader) RowLen() int { return rowLen(br.NVocab) }

// ScoredPerChunk is the number of positions each chunk scores.
func (br *BaseReader) ScoredPerChunk() int { return scoredPerChunk(br.NCtx) }

// NextChunk reads the next chunk's rows into dst (reallocated when too
// small) and returns them; io.EOF after the last chunk. A row whose scale or
// minimum is not a finite number is reported as a format error.
func (br *BaseReader) NextChunk(dst []uint16) ([]uint16, error) {
	if br.chunk >= br.NChunk {
		return nil, io.EOF
	}
	nv := br.RowLen()
	n := br.ScoredPerChunk() * nv
	if cap(dst) < n {
		dst = make([]uint16, n)
	}
	dst = dst[:n]
	if cap(br.scratch) < 2*n {
		br.scratch = make([]byte, 2*n)
	}
	b := br.scratch[:2*n]
	if got, err := io.ReadFull(br.r, b); err != nil {
		return nil, br.failAt(br.offset+int64(got), "file ends inside chunk %d of %d", br.chunk, br.NChunk)
	}
	for i := range dst {
		dst[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	for row := 0; row < n; row += nv {
		scale, minLP := decodeHeader(dst[row:])
		if !finite(scale) || !finite(minLP) || scale < 0 {
			return nil, br.failAt(br.offset+2*int64(row), "chunk %d row %d has scale %g and min log-prob %g",
				br.chunk, row/nv, scale, minLP)
		}
	}
	br.offset += 2 * int64(n)
	br.chunk++
	return dst, nil
}

func finite(f float32) bool { return !math.IsInf(float64(f), 0) && !math.IsNaN(float64(f)) }

// Close closes the underlying file, if OpenBase opened it.
func (br *BaseReader) Close() error {
	if br.closer != nil {
		return br.closer.Close()
	}
	return nil
}

package gguf

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/internal/atomicfile"
)

// WriteOptions controls how a model is written.
type WriteOptions struct {
	// Codec encodes tensors whose stored type differs from their source;
	// formats.PlainCodec when nil.
	Codec formats.Codec
	// Threads materialise tensors in parallel; the output is the same for
	// any value. 0 means all CPUs.
	Threads int
	// Overwrite allows replacing an existing output file.
	Overwrite bool
	// Progress, if set, is called after each tensor with the bytes of
	// tensor data written so far and the total.
	Progress func(done, total int64)
	// OnTensor, if set, is called with each tensor and its encoded bytes
	// just before they are written (for hashing or statistics).
	OnTensor func(t *formats.Tensor, data []byte)
}

// Layout is where each tensor's data goes in the file.
type Layout struct {
	Alignment uint64
	Offsets   []uint64 // relative to the data section
	Sizes     []uint64
	DataSize  uint64
}

// Plan computes the data layout of m without reading any tensor data.
func Plan(m *formats.Model) (*Layout, error) {
	l := &Layout{Alignment: DefaultAlignment}
	if v, ok := m.KV.Get("general.alignment"); ok {
		a, isU32 := v.(uint32)
		if !isU32 || a == 0 || a&(a-1) != 0 {
			return nil, fmt.Errorf("general.alignment must be a non-zero power of two uint32, got %v", v)
		}
		l.Alignment = uint64(a)
	}
	seen := map[string]bool{}
	var off uint64
	for _, t := range m.Tensors {
		if seen[t.Name] {
			return nil, fmt.Errorf("duplicate tensor name %s", t.Name)
		}
		seen[t.Name] = true
		if len(t.Shape) == 0 || len(t.Shape) > MaxDims {
			return nil, fmt.Errorf("tensor %s: %d dimensions (ggml allows 1 to %d)", t.Name, len(t.Shape), MaxDims)
		}
		size, err := t.Size()
		if err != nil {
			return nil, err
		}
		l.Offsets = append(l.Offsets, off)
		l.Sizes = append(l.Sizes, size)
		off += alignUp(size, l.Alignment)
	}
	l.DataSize = off
	return l, nil
}

// WriteFile writes m to path atomically: nothing appears at path unless
// every tensor was written. Cancelling ctx stops the write and removes the
// temporary file.
func WriteFile(ctx context.Context, path string, m *formats.Model, opt WriteOptions) error {
	out, err := atomicfile.Create(path, opt.Overwrite)
	if err != nil {
		return err
	}
	if err := Write(ctx, out, m, opt); err != nil {
		out.Abort()
		return fmt.Errorf("%s: %w", path, err)
	}
	return out.Commit()
}

// Write streams m as GGUF v3 to w: the header, then each tensor's data in
// order. Tensors are materialised by opt.Threads workers, at most that many
// (plus one being written) held in memory at once.
func Write(ctx context.Context, w io.Writer, m *formats.Model, opt WriteOptions) error {
	layout, err := Plan(m)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	cw := &countingWriter{w: bw}
	if err := writeHeader(cw, m, layout); err != nil {
		return err
	}
	// gguf-py pads the header to the data alignment only when tensor data
	// follows; a vocabulary-only file ends right after its metadata.
	if len(m.Tensors) > 0 {
		if err := pad(cw, layout.Alignment); err != nil {
			return err
		}
	}
	threads := opt.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	codec := opt.Codec
	if codec == nil {
		codec = formats.PlainCodec{}
	}

	// Tensors that can be produced a range of rows at a time are written
	// that way, by all the threads together, so memory holds a few ranges
	// rather than whole tensors; the rest are materialised whole.
	streams := make([]*formats.RowStream, len(m.Tensors))
	if opt.OnTensor == nil {
		for i, t := range m.Tensors {
			if s, ok, err := formats.NewRowStream(t, codec); ok && err == nil {
				streams[i] = s
			} // an inconsistent tensor fails in Materialize, in order
		}
	}

	type result struct {
		data     []byte
		err      error
		parted   bool
		streamed bool
	}
	ctx, cancel := context.WithCancel(ctx)
	// Workers read their sources, often a mapping of an input file that the
	// caller unmaps as soon as Write returns, so Write waits for every
	// goroutine it started, on error and cancel too.
	var workers sync.WaitGroup
	defer func() {
		cancel()
		workers.Wait()
	}()
	results := make([]chan result, len(m.Tensors))
	for i := range results {
		results[i] = make(chan result, 1)
	}
	slots := make(chan struct{}, threads)
	workers.Go(func() {
		for i, t := range m.Tensors {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			if ctx.Err() != nil {
				return
			}
			if streams[i] != nil {
				results[i] <- result{streamed: true}
				continue
			}
			if _, parted := t.Source.(formats.PartedSource); parted && opt.OnTensor == nil {
				// written part by part by the loop below
				results[i] <- result{parted: true}
				continue
			}
			workers.Go(func() {
				data, err := formats.Materialize(t, codec)
				results[i] <- result{data: data, err: err}
			})
		}
	})

	var done int64
	total := int64(layout.DataSize)
	for i, t := range m.Tensors {
		var r result
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-slots
		if r.err != nil {
			return r.err
		}
		if r.streamed {
			if err := writeRows(ctx, cw, streams[i], threads); err != nil {
				return err
			}
		} else if r.parted {
			// One part (a Mixtral expert) in memory at a time.
			var n uint64
			handled, err := formats.MaterializeParts(t, codec, func(b []byte) error {
				n += uint64(len(b))
				if _, err := cw.Write(b); err != nil {
					return err
				}
				// With little live data the GC's pacing would let several
				// parts' garbage pile up; collecting here keeps the peak
				// near one part. Small parts are not worth a collection.
				if len(b) >= partGCThreshold {
					runtime.GC()
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("writing tensor %s: %w", t.Name, err)
			}
			if !handled {
				if r.data, err = formats.Materialize(t, codec); err != nil {
					return err
				}
				if _, err := cw.Write(r.data); err != nil {
					return fmt.Errorf("writing tensor %s: %w", t.Name, err)
				}
				n = uint64(len(r.data))
			}
			if n != layout.Sizes[i] {
				return fmt.Errorf("tensor %s: produced %d bytes, layout needs %d", t.Name, n, layout.Sizes[i])
			}
		} else {
			if err := writeWhole(cw, t, r.data, layout.Sizes[i], opt.OnTensor); err != nil {
				return err
			}
		}
		if err := pad(cw, layout.Alignment); err != nil {
			return fmt.Errorf("writing tensor %s: %w", t.Name, err)
		}
		done += int64(alignUp(layout.Sizes[i], layout.Alignment))
		if opt.Progress != nil {
			opt.Progress(done, total)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// streamRangeBytes is about the memory one range of rows takes while it is
// produced (output and working buffers); a streamed tensor has at most
// two ranges per thread in flight.
var streamRangeBytes = 1 << 20

// writeRows writes the tensor s produces, in ranges of rows that threads
// workers fill while the ranges before them are written, in order. The
// first failing range's error is returned as Materialize would return it.
func writeRows(ctx context.Context, w io.Writer, s *formats.RowStream, threads int) error {
	rows := s.Rows()
	perRow := s.RowBytes() + s.ScratchRowBytes()
	g := s.Granule()
	chunk := max(g, streamRangeBytes/max(1, perRow)/g*g)
	nChunks := (rows + chunk - 1) / chunk
	if nChunks == 0 {
		return nil
	}
	inFlight := min(nChunks, 2*threads)
	workers := min(threads, nChunks)

	type job struct {
		lo, hi int
		buf    []byte
		done   chan error
	}
	jobs := make(chan *job, inFlight)
	var wg sync.WaitGroup
	// The workers read the source, which the caller may unmap once Write
	// returns: wait for them on every path.
	defer func() {
		close(jobs)
		wg.Wait()
	}()
	for range workers {
		wg.Go(func() {
			var scratch []byte
			for j := range jobs {
				if err := ctx.Err(); err != nil {
					j.done <- err
					continue
				}
				var err error
				scratch, err = s.Fill(j.buf, j.lo, j.hi, scratch)
				j.done <- err
			}
		})
	}
	var free [][]byte
	pending := make([]*job, 0, inFlight)
	next := 0
	for next < nChunks || len(pending) > 0 {
		for next < nChunks && len(pending) < inFlight {
			lo, hi := next*chunk, min((next+1)*chunk, rows)
			n := (hi - lo) * s.RowBytes()
			var buf []byte
			if k := len(free); k > 0 && cap(free[k-1]) >= n {
				buf, free = free[k-1][:n], free[:k-1]
			} else {
				buf = make([]byte, n)
			}
			j := &job{lo: lo, hi: hi, buf: buf, done: make(chan error, 1)}
			jobs <- j
			pending = append(pending, j)
			next++
		}
		j := pending[0]
		var err error
		select {
		case err = <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err != nil {
			return err
		}
		if _, err := w.Write(j.buf); err != nil {
			return fmt.Errorf("writing tensor %s: %w", s.Tensor().Name, err)
		}
		free = append(free, j.buf)
		pending = pending[1:]
	}
	return nil
}

// partGCThreshold is the part size from which the writer collects garbage
// after each part of a PartedSource.
const partGCThreshold = 1 << 20

// writeWhole writes one materialised tensor.
func writeWhole(cw *countingWriter, t *formats.Tensor, data []byte, size uint64, onTensor func(*formats.Tensor, []byte)) error {
	if uint64(len(data)) != size {
		return fmt.Errorf("tensor %s: produced %d bytes, layout needs %d", t.Name, len(data), size)
	}
	if onTensor != nil {
		onTensor(t, data)
	}
	if _, err := cw.Write(data); err != nil {
		return fmt.Errorf("writing tensor %s: %w", t.Name, err)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

var zeros [256]byte

func pad(cw *countingWriter, align uint64) error {
	n := alignUp(cw.n, align) - cw.n
	for n > 0 {
		k := min(n, uint64(len(zeros)))
		if _, err := cw.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func writeHeader(w io.Writer, m *formats.Model, l *Layout) error {
	e := &encoder{w: w}
	e.u32(Magic)
	e.u32(3)
	e.u64(uint64(len(m.Tensors)))
	e.u64(uint64(len(m.KV)))
	seen := map[string]bool{}
	for _, kv := range m.KV {
		if seen[kv.Key] {
			return fmt.Errorf("duplicate metadata key %s", kv.Key)
		}
		seen[kv.Key] = true
		vt, err := formats.TypeOf(kv.Value)
		if err != nil {
			return fmt.Errorf("metadata %s: %w", kv.Key, err)
		}
		e.str(kv.Key)
		e.u32(uint32(vt))
		if err := e.value(vt, kv.Value); err != nil {
			return fmt.Errorf("metadata %s: %w", kv.Key, err)
		}
	}
	for i, t := range m.Tensors {
		e.str(t.Name)
		e.u32(uint32(len(t.Shape)))
		for _, d := range t.Shape {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(l.Offsets[i])
	}
	return e.err
}

type encoder struct {
	w   io.Writer
	buf [8]byte
	err error
}

func (e *encoder) write(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}
func (e *encoder) u8(v uint8) { e.buf[0] = v; e.write(e.buf[:1]) }
func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], v)
	e.write(e.buf[:2])
}
func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.write(e.buf[:4])
}
func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.write(e.buf[:8])
}
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.write([]byte(s)) }

// The signed and floating-point values are stored as the bits of the
// unsigned integer of their size.
func (e *encoder) i8(v int8)     { e.u8(uint8(v)) }
func (e *encoder) i16(v int16)   { e.u16(uint16(v)) }
func (e *encoder) i32(v int32)   { e.u32(uint32(v)) }
func (e *encoder) i64(v int64)   { e.u64(uint64(v)) }
func (e *encoder) f32(v float32) { e.u32(math.Float32bits(v)) }
func (e *encoder) f64(v float64) { e.u64(math.Float64bits(v)) }
func (e *encoder) boolean(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

// value encodes v, whose GGUF type is t.
func (e *encoder) value(t formats.ValueType, v any) error {
	return codecs[t].write(e, v)
}

func (e *encoder) array(a formats.Array) error {
	e.u32(uint32(a.Elem))
	e.u64(uint64(a.Len()))
	if c, ok := codecs[a.Elem]; ok {
		if held, err := c.writeArray(e, a.Values); held {
			return err
		}
	}
	return fmt.Errorf("array declared as %s holds %T", a.Elem, a.Values)
}

package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
)

// WriteTensor is one tensor to write: raw little-endian row-major bytes,
// given as Data or produced on demand by Fill (so a large checkpoint can be
// streamed one tensor at a time).
type WriteTensor struct {
	Name  string
	DType DType
	Shape []uint64 // torch order
	Data  []byte
	// Fill, used when Data is nil, writes the tensor's bytes into buf
	// (len(buf) is the tensor's size).
	Fill func(buf []byte) error
}

func (t *WriteTensor) size() uint64 {
	n := uint64(t.DType.Size())
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Write writes tensors, in the given order, as a safetensors file: the
// header lists them in that order with contiguous offsets and is padded with
// spaces to a multiple of 8 bytes, as the reference writer does.
func Write(w io.Writer, tensors []WriteTensor, metadata map[string]string) error {
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			hdr.WriteByte(',')
		}
		first = false
	}
	if len(metadata) > 0 {
		sep()
		b, err := json.Marshal(metadata)
		if err != nil {
			return err
		}
		hdr.WriteString(`"__metadata__":`)
		hdr.Write(b)
	}
	var off uint64
	for _, t := range tensors {
		if !t.DType.Known() {
			return fmt.Errorf("tensor %s: unknown dtype %q", t.Name, t.DType)
		}
		n := t.size()
		if t.Data != nil && n != uint64(len(t.Data)) || t.Data == nil && t.Fill == nil && n != 0 {
			return fmt.Errorf("tensor %s: %s%v needs %d bytes, got %d", t.Name, t.DType, t.Shape, n, len(t.Data))
		}
		sep()
		name, _ := json.Marshal(t.Name)
		hdr.Write(name)
		hdr.WriteString(`:{"dtype":"` + string(t.DType) + `","shape":[`)
		for i, d := range t.Shape {
			if i > 0 {
				hdr.WriteByte(',')
			}
			hdr.WriteString(strconv.FormatUint(d, 10))
		}
		fmt.Fprintf(&hdr, `],"data_offsets":[%d,%d]}`, off, off+n)
		off += n
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(hdr.Len()))
	bw.Write(lenBuf[:])
	bw.Write(hdr.Bytes())
	var buf []byte
	for _, t := range tensors {
		data := t.Data
		if data == nil && t.Fill != nil {
			n := t.size()
			if uint64(cap(buf)) < n {
				buf = make([]byte, n)
			}
			data = buf[:n]
			if err := t.Fill(data); err != nil {
				return fmt.Errorf("tensor %s: %w", t.Name, err)
			}
		}
		if _, err := bw.Write(data); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// WriteFile writes tensors to path (see Write).
func WriteFile(path string, tensors []WriteTensor, metadata map[string]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Write(f, tensors, metadata); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

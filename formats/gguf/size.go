package gguf

import (
	"io"

	"github.com/llqt/llqt/formats"
)

// FileSize is the exact size in bytes of the file Write makes of m: the
// header (metadata and tensor infos), padded to the data alignment when
// tensors follow, and every tensor's data, each padded. It reads no tensor
// data, so a size target can be checked before anything is encoded.
func FileSize(m *formats.Model) (uint64, error) {
	n, l, err := headerBytes(m)
	if err != nil {
		return 0, err
	}
	if len(m.Tensors) == 0 {
		return n, nil
	}
	return alignUp(n, l.Alignment) + l.DataSize, nil
}

// headerBytes plans m and counts the bytes its header (metadata and tensor
// infos) takes, before the padding to the data alignment.
func headerBytes(m *formats.Model) (uint64, *Layout, error) {
	l, err := Plan(m)
	if err != nil {
		return 0, nil, err
	}
	cw := &countingWriter{w: io.Discard}
	if err := writeHeader(cw, m, l); err != nil {
		return 0, nil, err
	}
	return cw.n, l, nil
}

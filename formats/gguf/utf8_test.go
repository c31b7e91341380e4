package gguf

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// rawGGUF builds a GGUF v3 header with string metadata and, if name is not
// empty, one F32 tensor of 4 elements.
func rawGGUF(kvs [][2]string, name string) []byte {
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	str := func(s string) { w(uint64(len(s))); b.WriteString(s) }
	nt := uint64(0)
	if name != "" {
		nt = 1
	}
	w(uint32(Magic))
	w(uint32(3))
	w(nt)
	w(uint64(len(kvs)))
	for _, kv := range kvs {
		str(kv[0])
		w(uint32(8)) // string
		str(kv[1])
	}
	if name != "" {
		str(name)
		w(uint32(1))
		w(uint64(4))
		w(uint32(0)) // F32
		w(uint64(0))
		for b.Len()%DefaultAlignment != 0 {
			b.WriteByte(0)
		}
		b.Write(make([]byte, 16))
	}
	return b.Bytes()
}

func TestUTF8InKeysAndValues(t *testing.T) {
	arch := [2]string{"general.architecture", "llama"}
	for _, tc := range []struct {
		name    string
		kvs     [][2]string
		tensor  string
		wantErr []string // all must appear; nil: the file is accepted
	}{
		{"valid", [][2]string{arch, {"general.name", "ok"}}, "w", nil},
		{"partial byte sequence in a value is accepted", [][2]string{arch, {"general.name", "part\xe2\x82"}}, "w", nil},
		{"invalid key", [][2]string{arch, {"bad\xffkey", "x"}}, "w", []string{"metadata[1] key", `"bad\xffkey"`, "at offset 69", "not valid UTF-8"}},
		{"invalid tensor name", [][2]string{arch}, "w\xc3", []string{"tensor[0] name", "not valid UTF-8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := rawGGUF(tc.kvs, tc.tensor)
			f, err := Parse(bytes.NewReader(raw), int64(len(raw)), "x.gguf")
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if v, _ := f.KV.Get("general.name"); len(tc.kvs) > 1 && v != tc.kvs[1][1] {
					t.Errorf("general.name = %q, want %q", v, tc.kvs[1][1])
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

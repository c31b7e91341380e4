package gguf

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/internal/leakcheck"
)

// raw builds GGUF bytes field by field, so a test can write any lie.
type raw struct{ bytes.Buffer }

func (b *raw) u8(v uint8) *raw { b.WriteByte(v); return b }
func (b *raw) u32(v uint32) *raw {
	_ = binary.Write(&b.Buffer, binary.LittleEndian, v)
	return b
}
func (b *raw) u64(v uint64) *raw {
	_ = binary.Write(&b.Buffer, binary.LittleEndian, v)
	return b
}
func (b *raw) str(s string) *raw { b.u64(uint64(len(s))); b.WriteString(s); return b }

// header starts a v3 file with the given counts.
func header(nTensors, nKV uint64) *raw {
	b := &raw{}
	return b.u32(Magic).u32(3).u64(nTensors).u64(nKV)
}

// kvU32 appends a uint32 metadata entry.
func (b *raw) kvU32(key string, v uint32) *raw {
	return b.str(key).u32(uint32(formats.ValUint32)).u32(v)
}

// tensor appends a tensor info.
func (b *raw) tensor(name string, typ ggml.Type, offset uint64, shape ...uint64) *raw {
	b.str(name).u32(uint32(len(shape)))
	for _, d := range shape {
		b.u64(d)
	}
	return b.u32(uint32(typ)).u64(offset)
}

// pad appends zeros up to a multiple of align, then n more bytes of data.
func (b *raw) pad(align int, n int) *raw {
	for b.Len()%align != 0 {
		b.WriteByte(0)
	}
	b.Write(make([]byte, n))
	return b
}

// nestedArrays declares an array of arrays depth levels deep.
func nestedArrays(depth int) *raw {
	b := header(0, 1)
	b.str("deep").u32(uint32(formats.ValArray))
	for i := 0; i < depth; i++ {
		b.u32(uint32(formats.ValArray)).u64(1)
	}
	return b
}

type hostileCase struct {
	name  string
	data  []byte
	field string // substring expected in FormatError.Field
}

func hostileCases() []hostileCase {
	const f32 = ggml.TypeF32
	big := uint64(math.MaxUint64)
	return []hostileCase{
		{"empty", nil, "magic"},
		{"bad magic", []byte("GGML\x03\x00\x00\x00"), "magic"},
		{"version 1", (&raw{}).u32(Magic).u32(1).u64(0).u64(0).Bytes(), "version"},
		{"version 2^32-1", (&raw{}).u32(Magic).u32(math.MaxUint32).u64(0).u64(0).Bytes(), "version"},
		{"truncated header", (&raw{}).u32(Magic).u32(3).u32(0).Bytes(), "tensor count"},
		{"tensor count 2^64-1", header(big, 0).Bytes(), "tensor count"},
		{"tensor count 2^63", header(1<<63, 0).Bytes(), "tensor count"},
		{"metadata count 2^64-1", header(0, big).Bytes(), "metadata count"},
		{"metadata count just too big", header(0, 2).kvU32("a", 1).Bytes(), "metadata count"},
		{"metadata count fits but lies", header(0, 3).kvU32("a", 1).kvU32("b", 2).pad(1, 4).Bytes(), "metadata[2] key"},
		{"key longer than the file", header(0, 1).u64(1<<62).pad(1, 8).Bytes(), "metadata[0] key"},
		{"key length 2^64-1", header(0, 1).u64(big).pad(1, 8).Bytes(), "metadata[0] key"},
		{"string value longer than the file",
			header(0, 1).str("s").u32(uint32(formats.ValString)).u64(1 << 40).Bytes(), "metadata s"},
		{"string value length 2^64-1",
			header(0, 1).str("s").u32(uint32(formats.ValString)).u64(big).Bytes(), "metadata s"},
		{"unknown value type", header(0, 1).str("k").u32(13).u32(0).Bytes(), "metadata k"},
		{"value type 2^32-1", header(0, 1).str("k").u32(math.MaxUint32).Bytes(), "metadata k"},
		{"bool byte 2", header(0, 1).str("b").u32(uint32(formats.ValBool)).u8(2).Bytes(), "metadata b"},
		{"array length 2^64-1",
			header(0, 1).str("a").u32(uint32(formats.ValArray)).u32(uint32(formats.ValUint8)).u64(big).Bytes(), "metadata a length"},
		{"array of strings longer than the file",
			header(0, 1).str("a").u32(uint32(formats.ValArray)).u32(uint32(formats.ValString)).u64(1 << 50).Bytes(), "metadata a length"},
		{"array element string longer than the file",
			header(0, 1).str("a").u32(uint32(formats.ValArray)).u32(uint32(formats.ValString)).u64(1).u64(1 << 40).Bytes(), "metadata a"},
		{"array unknown element type",
			header(0, 1).str("a").u32(uint32(formats.ValArray)).u32(99).u64(0).Bytes(), "metadata a element type"},
		{"arrays nested 1000 deep", nestedArrays(1000).Bytes(), "metadata deep"},
		{"arrays nested 9 deep", nestedArrays(9).Bytes(), "metadata deep"},
		{"duplicate metadata key", header(0, 2).kvU32("k", 1).kvU32("k", 2).Bytes(), "metadata key k"},
		{"alignment 0", header(0, 1).kvU32("general.alignment", 0).Bytes(), "general.alignment"},
		{"alignment 3", header(0, 1).kvU32("general.alignment", 3).Bytes(), "general.alignment"},
		{"alignment 2^31+1", header(0, 1).kvU32("general.alignment", 1<<31+1).Bytes(), "general.alignment"},
		{"alignment as uint64",
			header(0, 1).str("general.alignment").u32(uint32(formats.ValUint64)).u64(32).Bytes(), "general.alignment"},
		{"alignment as string",
			header(0, 1).str("general.alignment").u32(uint32(formats.ValString)).str("32").Bytes(), "general.alignment"},
		{"tensor name longer than the file", header(1, 0).u64(1<<33).pad(1, 24).Bytes(), "tensor[0] name"},
		{"n_dims 0", header(1, 0).tensor("t", f32, 0).pad(32, 0).Bytes(), "tensor t n_dims"},
		{"n_dims 5", header(1, 0).tensor("t", f32, 0, 1, 1, 1, 1, 1).pad(32, 4).Bytes(), "tensor t n_dims"},
		{"n_dims 2^32-1", header(1, 0).str("t").u32(math.MaxUint32).pad(1, 32).Bytes(), "tensor t n_dims"},
		{"dimension above 2^63", header(1, 0).tensor("t", f32, 0, 1<<63).pad(32, 4).Bytes(), "tensor t ne[0]"},
		{"dimension product overflows",
			header(1, 0).tensor("t", f32, 0, 1<<32, 1<<32).pad(32, 4).Bytes(), "tensor t ne[1]"},
		{"dimension product overflows in 4-D",
			header(1, 0).tensor("t", f32, 0, 1<<16, 1<<16, 1<<16, 1<<16).pad(32, 4).Bytes(), "tensor t ne[3]"},
		{"byte size overflows", header(1, 0).tensor("t", f32, 0, 1<<62).pad(32, 4).Bytes(), "tensor t"},
		{"unknown type id 4", header(1, 0).tensor("t", 4, 0, 8).pad(32, 32).Bytes(), "tensor t type"},
		{"unknown type id 2^32-1", header(1, 0).tensor("t", math.MaxUint32, 0, 8).pad(32, 32).Bytes(), "tensor t type"},
		{"row not a whole number of blocks",
			header(1, 0).tensor("t", ggml.TypeQ4_0, 0, 16).pad(32, 18).Bytes(), "tensor t ne[0]"},
		{"tensor data past EOF", header(1, 0).tensor("t", f32, 0, 1000).pad(32, 64).Bytes(), "tensor t data"},
		{"tensor offset near 2^64",
			header(1, 0).tensor("t", f32, big-31, 8).pad(32, 32).Bytes(), "tensor t data"},
		{"tensor offset past EOF", header(1, 0).tensor("t", f32, 1<<20, 8).pad(32, 32).Bytes(), "tensor t data"},
		{"misaligned tensor", header(1, 0).tensor("t", f32, 4, 1).pad(32, 32).Bytes(), "tensor t offset"},
		{"misaligned for custom alignment",
			header(1, 1).kvU32("general.alignment", 64).tensor("t", f32, 32, 1).pad(64, 64).Bytes(), "tensor t offset"},
		{"overlapping tensors",
			header(2, 0).tensor("a", f32, 0, 16).tensor("b", f32, 32, 16).pad(32, 128).Bytes(), "tensor b data"},
		{"same offset twice",
			header(2, 0).tensor("a", f32, 0, 8).tensor("b", f32, 0, 8).pad(32, 64).Bytes(), "data"},
		{"duplicate tensor names",
			header(2, 0).tensor("a", f32, 0, 8).tensor("a", f32, 32, 8).pad(32, 64).Bytes(), "tensor a"},
		{"data section past EOF",
			header(1, 1).kvU32("general.alignment", 1<<20).tensor("t", f32, 0, 0).Bytes(), "data section"},
		{"tensor count lies about the infos", header(3, 0).tensor("a", f32, 0, 8).pad(1, 60).Bytes(), "tensor"},
	}
}

// TestHostileFiles checks that each lying file is rejected with an error that
// wraps ErrFormat and names the file and the field.
func TestHostileFiles(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			name := "hostile-" + strings.ReplaceAll(tc.name, " ", "_") + ".gguf"
			f, err := Parse(bytes.NewReader(tc.data), int64(len(tc.data)), name)
			if err == nil {
				t.Fatalf("parsed a hostile file: %d tensors, %d KVs", len(f.Tensors), len(f.KV))
			}
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error does not wrap ErrFormat: %v", err)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a *FormatError: %v", err)
			}
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error does not name the file %s: %v", name, err)
			}
			if !strings.Contains(fe.Field, tc.field) {
				t.Errorf("field %q does not mention %q (error: %v)", fe.Field, tc.field, err)
			}
			if fe.Offset < 0 || fe.Offset > int64(len(tc.data)) {
				t.Errorf("offset %d outside the %d-byte file", fe.Offset, len(tc.data))
			}
		})
	}
}

// bytesAllocated runs fn and returns the bytes the process allocated meanwhile.
func bytesAllocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestHostileFilesAllocateLittle checks that no count or length is trusted
// before it is checked against the file: parsing each small hostile file
// (1 KiB at most, except the 12 KiB of 1000 nested arrays) allocates a few
// KiB beyond its own size at most, whatever sizes it declares.
func TestHostileFilesAllocateLittle(t *testing.T) {
	for _, tc := range hostileCases() {
		if len(tc.data) > 16<<10 {
			t.Fatalf("%s: hostile file of %d bytes, want at most 16 KiB", tc.name, len(tc.data))
		}
		limit := uint64(8<<10 + len(tc.data))
		r := bytes.NewReader(tc.data)
		n := bytesAllocated(func() {
			for i := 0; i < 10; i++ {
				r.Seek(0, 0)
				_, _ = Parse(r, int64(len(tc.data)), "h.gguf")
			}
		}) / 10
		if n > limit {
			t.Errorf("%s: parsing a %d-byte file allocated %d bytes (limit %d)", tc.name, len(tc.data), n, limit)
		}
	}
}

// TestCountsFittingTheFileAllocateLittle covers counts that pass the
// "could fit in the file" check but are still lies: a 1 MiB file claiming as
// many metadata entries or tensors as its bytes allow must not make the
// reader reserve memory for all of them up front.
func TestCountsFittingTheFileAllocateLittle(t *testing.T) {
	const size = 1 << 20
	for _, tc := range []struct {
		name       string
		nT, nKV    uint64
		wantField  string
		limitBytes uint64
	}{
		{"metadata", 0, (size - 24) / 12, "metadata key", 256 << 10},
		{"tensors", (size - 24) / 24, 0, "n_dims", 256 << 10},
	} {
		b := header(tc.nT, tc.nKV)
		b.pad(1, size-b.Len()) // zero keys/names: "" twice is a duplicate; n_dims 0 is invalid
		data := b.Bytes()
		var err error
		n := bytesAllocated(func() { _, err = Parse(bytes.NewReader(data), size, "big.gguf") })
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.wantField) {
			t.Errorf("%s: want a %s error, got %v", tc.name, tc.wantField, err)
		}
		if n > tc.limitBytes {
			t.Errorf("%s: parsing allocated %d bytes for a %d-byte file (limit %d)", tc.name, n, size, tc.limitBytes)
		}
	}
}

// TestHostileArrayElementsAllocateLittle: an array whose length fits the file
// only if every element is minimal must not reserve more than the file holds.
func TestHostileArrayElementsAllocateLittle(t *testing.T) {
	const size = 1 << 20
	b := header(0, 1).str("a").u32(uint32(formats.ValArray)).u32(uint32(formats.ValString))
	b.u64((size - uint64(b.Len()) - 8) / 8)
	b.u64(1 << 40) // first string lies about its length
	b.pad(1, size-b.Len())
	data := b.Bytes()
	var err error
	n := bytesAllocated(func() { _, err = Parse(bytes.NewReader(data), size, "arr.gguf") })
	if !errors.Is(err, ErrFormat) {
		t.Fatalf("want ErrFormat, got %v", err)
	}
	if n > 2*size {
		t.Errorf("allocated %d bytes for a %d-byte file", n, size)
	}
}

// blockingSource sleeps in ReadRaw and counts calls in flight, so a test can
// tell whether Write returned while its workers still read their sources
// (after which a caller would unmap the file they read from).
type blockingSource struct {
	inFlight *atomic.Int32
	delay    time.Duration
	fail     bool
	elems    int
}

func (s blockingSource) Type() ggml.Type { return ggml.TypeF32 }
func (s blockingSource) ReadRaw() ([]byte, error) {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	if s.fail {
		return nil, errors.New("source broke")
	}
	time.Sleep(s.delay)
	return make([]byte, 4*s.elems), nil
}

func slowModel(inFlight *atomic.Int32, n int, failFirst bool) *formats.Model {
	m := &formats.Model{Arch: "llama"}
	for i := 0; i < n; i++ {
		m.Tensors = append(m.Tensors, &formats.Tensor{
			Name: fmt.Sprintf("t%d", i), Shape: []uint64{8}, Type: ggml.TypeF32,
			Source: blockingSource{inFlight: inFlight, delay: 30 * time.Millisecond, fail: failFirst && i == 0, elems: 8},
		})
	}
	return m
}

// TestWriterStopsItsWorkers: after Write fails or is cancelled, none of its
// goroutines is left running and no source is still being read.
func TestWriterStopsItsWorkers(t *testing.T) {
	cases := []struct {
		name string
		run  func(m *formats.Model) error
		fail bool
	}{
		{"source error", func(m *formats.Model) error {
			return Write(context.Background(), &bytes.Buffer{}, m, WriteOptions{Threads: 4})
		}, true},
		{"cancel", func(m *formats.Model) error {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(40*time.Millisecond, cancel)
			return Write(ctx, &bytes.Buffer{}, m, WriteOptions{Threads: 4})
		}, false},
		{"cancelled before start", func(m *formats.Model) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return Write(ctx, &bytes.Buffer{}, m, WriteOptions{Threads: 4})
		}, false},
		{"disk full", func(m *formats.Model) error {
			// Every tensor is large enough to pass the 1 MiB buffer, so the
			// failure comes while workers are busy.
			for _, tn := range m.Tensors {
				src := tn.Source.(blockingSource)
				src.elems = 1 << 18
				tn.Shape = []uint64{1 << 18}
				tn.Source = src
			}
			return Write(context.Background(), &failingWriter{left: 3 << 20}, m, WriteOptions{Threads: 4})
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer leakcheck.Check(t)()
			var inFlight atomic.Int32
			err := tc.run(slowModel(&inFlight, 12, tc.fail))
			if err == nil {
				t.Fatal("Write succeeded")
			}
			if n := inFlight.Load(); n != 0 {
				t.Errorf("Write returned (%v) with %d sources still being read", err, n)
			}
		})
	}
}

// TestWriteFileStopsItsWorkers runs the same through WriteFile, which must
// also leave no file behind.
func TestWriteFileStopsItsWorkers(t *testing.T) {
	defer leakcheck.Check(t)()
	dir := t.TempDir()
	var inFlight atomic.Int32
	err := WriteFile(context.Background(), dir+"/out.gguf", slowModel(&inFlight, 8, true), WriteOptions{Threads: 3})
	if err == nil || !strings.Contains(err.Error(), "source broke") {
		t.Fatalf("want the source's error, got %v", err)
	}
	if n := inFlight.Load(); n != 0 {
		t.Errorf("%d sources still being read after WriteFile returned", n)
	}
	assertEmptyDir(t, dir)
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("left files behind: %v", entries)
	}
}

// TestErrorsShowNamesSafely: names and keys from the file reach error
// messages escaped and cut short, so a corrupt file cannot flood or drive
// the terminal.
func TestErrorsShowNamesSafely(t *testing.T) {
	long := strings.Repeat("k", 1<<20)
	for _, tc := range []struct {
		name string
		data []byte
		bad  string
	}{
		{"escape sequence in a key", header(0, 2).kvU32("\x1b[2J\x1b]0;pwned\a", 1).kvU32("\x1b[2J\x1b]0;pwned\a", 1).Bytes(), "\x1b"},
		{"invalid UTF-8 in a key", header(0, 1).str("\xff\xfe").u32(99).Bytes(), "\xff"},
		{"megabyte key", header(0, 1).str(long).u32(99).Bytes(), long[:1000]},
		{"long tensor name", header(1, 0).tensor(strings.Repeat("n", 64), ggml.TypeF32, 0, 1).pad(32, 4).Bytes(), strings.Repeat("n", 64)},
	} {
		_, err := Parse(bytes.NewReader(tc.data), int64(len(tc.data)), "names.gguf")
		if !errors.Is(err, ErrFormat) {
			t.Fatalf("%s: want ErrFormat, got %v", tc.name, err)
		}
		msg := err.Error()
		if strings.Contains(msg, tc.bad) || len(msg) > 1000 {
			t.Errorf("%s: unsafe or overlong message (%d bytes): %.300q", tc.name, len(msg), msg)
		}
	}
	// A 63-byte name is llama.cpp's limit and still accepted.
	ok := header(1, 0).tensor(strings.Repeat("n", 63), ggml.TypeF32, 0, 1).pad(32, 4).Bytes()
	if _, err := Parse(bytes.NewReader(ok), int64(len(ok)), "ok.gguf"); err != nil {
		t.Errorf("63-byte name: %v", err)
	}
}

// TestOpenRefusesNonRegularFiles: a FIFO or a device is refused at once
// (opening a FIFO would block until a writer came).
func TestOpenRefusesNonRegularFiles(t *testing.T) {
	fifo := t.TempDir() + "/pipe.gguf"
	if out, err := exec.Command("mkfifo", fifo).CombinedOutput(); err != nil {
		t.Skipf("mkfifo: %v %s", err, out)
	}
	for _, p := range []string{fifo, "/dev/zero", t.TempDir()} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		done := make(chan error, 1)
		go func() { _, err := Open(p); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s: want a clear refusal, got %v", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Open(%s) blocked", p)
		}
	}
}

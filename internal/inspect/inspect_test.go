package inspect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/formats/safetensors"
	"github.com/llqt/llqt/internal/fixtures"
	"github.com/llqt/llqt/internal/synth"
)

type memSource struct {
	t    ggml.Type
	data []byte
}

func (s memSource) Type() ggml.Type          { return s.t }
func (s memSource) ReadRaw() ([]byte, error) { return append([]byte(nil), s.data...), nil }

func seq(n, start int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(start + i)
	}
	return b
}

func testModel() *formats.Model {
	kv := func(k string, v any) formats.KV { return formats.KV{Key: k, Value: v} }
	return &formats.Model{
		Arch: "llama",
		KV: formats.KVs{
			kv("general.architecture", "llama"),
			kv("general.name", strings.Repeat("long name ", 20)),
			kv("nan", float32(math.NaN())),
			kv("tokens", formats.Array{Elem: formats.ValString, Values: []string{"<unk>", "<s>", "</s>", "a", "b", "c", "d"}}),
			kv("few", formats.Array{Elem: formats.ValInt32, Values: []int32{1, 2}}),
			kv("inf", formats.Array{Elem: formats.ValFloat64, Values: []float64{math.Inf(1)}}),
			kv("nested", formats.Array{Elem: formats.ValArray, Values: []formats.Array{{Elem: formats.ValUint8, Values: []uint8{1}}}}),
		},
		Tensors: []*formats.Tensor{
			{Name: "tok", Shape: []uint64{4, 3}, Type: ggml.TypeF32, Source: memSource{ggml.TypeF32, seq(48, 0)}},
			{Name: "q", Shape: []uint64{64, 2}, Type: ggml.TypeQ8_0, Source: memSource{ggml.TypeQ8_0, seq(4*34, 7)}},
			{Name: "h", Shape: []uint64{8}, Type: ggml.TypeF16, Source: memSource{ggml.TypeF16, seq(16, 3)}},
		},
	}
}

func writeModel(t *testing.T, m *formats.Model) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := gguf.WriteFile(context.Background(), path, m, gguf.WriteOptions{Threads: 1}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInspectGGUF(t *testing.T) {
	m := testModel()
	path := writeModel(t, m)
	rep, err := Run(path, Options{Verify: true, Hash: true, ArrayPreview: 3})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if rep.Format != "gguf" || rep.Version != 3 || rep.Alignment != 32 || rep.FileSize != st.Size() {
		t.Errorf("header: %+v", rep)
	}
	if rep.Verify == nil || !rep.Verify.OK || len(rep.Verify.Problems) != 0 {
		t.Errorf("verify of a good file: %+v", rep.Verify)
	}
	byKey := map[string]Meta{}
	for _, md := range rep.Metadata {
		byKey[md.Key] = md
	}
	if tok := byKey["tokens"]; tok.ElemType != "string" || tok.Len != 7 || len(tok.First) != 3 || tok.First[1] != "<s>" {
		t.Errorf("array summary: %+v", tok)
	}
	if few := byKey["few"]; few.Len != 2 || len(few.First) != 2 {
		t.Errorf("short array summary: %+v", few)
	}
	wantParams := uint64(12 + 128 + 8)
	wantBytes := uint64(48 + 4*34 + 16)
	s := rep.Summary
	if s.Tensors != 3 || s.Parameters != wantParams || s.TensorBytes != wantBytes || s.FileSize != st.Size() {
		t.Errorf("summary %+v, want 3 tensors, %d params, %d bytes", s, wantParams, wantBytes)
	}
	if want := float64(wantBytes*8) / float64(wantParams); math.Abs(s.BPW-want) > 1e-9 {
		t.Errorf("bpw %v, want %v", s.BPW, want)
	}
	for i, tt := range rep.Tensors {
		raw, _ := m.Tensors[i].Source.ReadRaw()
		sum := sha256.Sum256(raw)
		if tt.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("tensor %s: sha256 %s, want %x", tt.Name, tt.SHA256, sum)
		}
		if tt.Name != m.Tensors[i].Name || tt.Type != m.Tensors[i].Type.String() || tt.Bytes != uint64(len(raw)) {
			t.Errorf("tensor row %+v", tt)
		}
	}

	// JSON must encode despite NaN and Inf metadata, and carry the hashes.
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	var back map[string]any
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), rep.Tensors[0].SHA256) || !strings.Contains(string(js), `"ok":true`) {
		t.Errorf("json lacks hash or verdict: %s", js)
	}

	var text bytes.Buffer
	if err := WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"array[string] len 7", `"<unk>", "<s>", "</s>", …`, "3 tensors, 148 parameters",
		"verify: OK", rep.Tensors[1].SHA256, "Q8_0", "[64, 2]", "… (200 bytes)"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, text.String())
		}
	}
}

func TestInspectGolden(t *testing.T) {
	path := fixtures.Path(t, "golden/tiny-llama-Q4_K_M.gguf")
	rep, err := Run(path, Options{Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Verify.OK || rep.Summary.Tensors != 57 || rep.Summary.Parameters != 6819072 {
		t.Errorf("golden: verify %+v, summary %+v", rep.Verify, rep.Summary)
	}
}

// rawGGUF builds a GGUF file field by field.
type rawGGUF struct{ bytes.Buffer }

func (b *rawGGUF) u32(v uint32) *rawGGUF {
	_ = binary.Write(&b.Buffer, binary.LittleEndian, v)
	return b
}
func (b *rawGGUF) u64(v uint64) *rawGGUF {
	_ = binary.Write(&b.Buffer, binary.LittleEndian, v)
	return b
}
func (b *rawGGUF) str(s string) *rawGGUF { b.u64(uint64(len(s))); b.WriteString(s); return b }
func (b *rawGGUF) tensor(name string, typ ggml.Type, off uint64, shape ...uint64) *rawGGUF {
	b.str(name).u32(uint32(len(shape)))
	for _, d := range shape {
		b.u64(d)
	}
	return b.u32(uint32(typ)).u64(off)
}
func (b *rawGGUF) pad(align, n int) *rawGGUF {
	for b.Len()%align != 0 {
		b.WriteByte(0)
	}
	b.Write(make([]byte, n))
	return b
}
func ggufHeader(nT, nKV uint64) *rawGGUF {
	b := &rawGGUF{}
	return b.u32(gguf.Magic).u32(3).u64(nT).u64(nKV)
}

func writeBytes(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bad.gguf")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVerifyListsEveryProblem: one file with several independent lies gets
// one line for each, where the reader stops at the first.
func TestVerifyListsEveryProblem(t *testing.T) {
	b := ggufHeader(7, 1)
	b.str("general.name").u32(uint32(formats.ValString)).str("bad")
	b.tensor("ok", ggml.TypeF32, 0, 8)           // [0,32)
	b.tensor("misaligned", ggml.TypeF32, 40, 2)  // offset 40
	b.tensor("overlap", ggml.TypeF32, 0, 4)      // [0,16) inside "ok"
	b.tensor("unknown", ggml.Type(4), 64, 32)    // removed type id
	b.tensor("blocks", ggml.TypeQ4_0, 64, 16)    // 16 not a multiple of 32
	b.tensor("past-eof", ggml.TypeF32, 96, 1000) // 4000 bytes, file has 64
	b.tensor("ok", ggml.TypeF32, 32, 8)          // duplicate name
	b.pad(32, 64)
	path := writeBytes(t, b.Bytes())

	if _, err := Run(path, Options{}); !errors.Is(err, gguf.ErrFormat) {
		t.Fatalf("without --verify: want the reader's ErrFormat, got %v", err)
	}
	rep, err := Run(path, Options{Verify: true})
	if !errors.Is(err, ErrVerify) || !errors.Is(err, gguf.ErrFormat) {
		t.Fatalf("want an error wrapping ErrVerify and ErrFormat, got %v", err)
	}
	if rep == nil || rep.Verify == nil || rep.Verify.OK {
		t.Fatalf("verdict: %+v", rep)
	}
	all := strings.Join(rep.Verify.Problems, "\n")
	for _, want := range []string{`misaligned offset: offset 40 is not a multiple of the alignment 32`,
		`overlap data: overlaps tensor ok`, `misaligned data: overlaps tensor ok`, `unknown type: unknown ggml type id 4`,
		`blocks ne[0]: 16 is not a multiple of the Q4_0 block size 32`, `past-eof data: data [96, +4000) runs past the end`,
		`tensor ok: duplicate tensor name`} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
	if len(rep.Verify.Problems) != 7 { // "misaligned" also overlaps the second "ok"
		t.Errorf("%d problems, want 7:\n%s", len(rep.Verify.Problems), all)
	}
	var text bytes.Buffer
	_ = WriteText(&text, rep)
	if !strings.Contains(text.String(), "verify: 7 problem(s)") || !strings.Contains(text.String(), "the reader rejects this file") {
		t.Errorf("text:\n%s", text.String())
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Error(err)
	}
}

func TestVerifyHeaderProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"not gguf", []byte("PK\x03\x04 a zip file"), "not a GGUF file"},
		{"empty", nil, "magic: needs 4 bytes"},
		{"tensor count 2^64-1", ggufHeader(math.MaxUint64, 0).Bytes(), "tensor count: 18446744073709551615 tensors cannot fit"},
		{"huge string", ggufHeader(0, 1).str("k").u32(uint32(formats.ValString)).u64(1 << 60).Bytes(), "exceed"},
		{"deep arrays", func() []byte {
			b := ggufHeader(0, 1).str("deep").u32(uint32(formats.ValArray))
			for i := 0; i < 1000; i++ {
				b.u32(uint32(formats.ValArray)).u64(1)
			}
			return b.Bytes()
		}(), "nested more than 8 deep"},
		{"bad alignment", ggufHeader(0, 1).str("general.alignment").u32(uint32(formats.ValUint32)).u32(48).Bytes(), "must be a non-zero power of two"},
		{"duplicate key", ggufHeader(0, 2).str("k").u32(uint32(formats.ValUint8)).pad(1, 1).
			str("k").u32(uint32(formats.ValUint8)).pad(1, 1).Bytes(), "metadata key k: duplicate key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Run(writeBytes(t, tc.data), Options{Verify: true})
			if !errors.Is(err, ErrVerify) {
				t.Fatalf("want ErrVerify, got %v", err)
			}
			if all := strings.Join(rep.Verify.Problems, "\n"); !strings.Contains(all, tc.want) {
				t.Errorf("problems lack %q: %s", tc.want, all)
			}
		})
	}
}

func TestInspectSafetensors(t *testing.T) {
	dir := t.TempDir()
	o := synth.Tiny()
	o.Shards = 2
	if err := synth.Write(dir, o); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(dir, Options{Verify: true, Hash: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Format != "hf" || rep.ShapeOrder != "torch" || !rep.Verify.OK || rep.Summary.Tensors == 0 {
		t.Fatalf("report: format %s, verify %+v, summary %+v", rep.Format, rep.Verify, rep.Summary)
	}
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	var params uint64
	files := map[string]bool{}
	for i, tt := range rep.Tensors {
		st := ck.Tensors[i]
		b, _ := st.File.Data(&st.TensorInfo)
		sum := sha256.Sum256(b)
		if tt.Name != st.Name || tt.SHA256 != hex.EncodeToString(sum[:]) || tt.Type != "BF16" {
			t.Errorf("tensor %d: %+v", i, tt)
		}
		params += st.Elements()
		files[tt.File] = true
	}
	if rep.Summary.Parameters != params || len(files) != 2 || math.Abs(rep.Summary.BPW-16) > 1e-9 {
		t.Errorf("summary %+v (want %d params, 16 bpw), files %v", rep.Summary, params, files)
	}
	var text bytes.Buffer
	if err := WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"config.hidden_size", "Hugging Face checkpoint", "FILE", "16.00 bpw", "verify: OK"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}

	// One shard on its own, then a truncated copy of it.
	shard := ck.Files[0].Path
	rep, err = Run(shard, Options{})
	if err != nil || rep.Format != "safetensors" || rep.Summary.Tensors != len(ck.Files[0].Tensors) {
		t.Fatalf("single file: %v %+v", err, rep)
	}
	data, _ := os.ReadFile(shard)
	bad := filepath.Join(t.TempDir(), "bad.safetensors")
	must(t, os.WriteFile(bad, data[:len(data)-1], 0o644))
	if _, err := Run(bad, Options{}); !errors.Is(err, safetensors.ErrFormat) {
		t.Errorf("truncated file: want safetensors.ErrFormat, got %v", err)
	}
	rep, err = Run(bad, Options{Verify: true})
	if !errors.Is(err, ErrVerify) || rep == nil || rep.Verify.OK || len(rep.Verify.Problems) == 0 {
		t.Errorf("truncated file with --verify: %v %+v", err, rep)
	}
	if _, err := Run(filepath.Join(dir, "missing.gguf"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzVerify: the verdict never panics, is OK exactly when the reader
// accepts the file, and has a problem line for each problem it is not OK for.
func FuzzVerify(f *testing.F) {
	var good bytes.Buffer
	if err := gguf.Write(context.Background(), &good, testModel(), gguf.WriteOptions{Threads: 1}); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	f.Add(ggufHeader(2, 0).tensor("a", ggml.TypeF32, 0, 8).tensor("b", ggml.TypeF32, 0, 8).pad(32, 64).Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		v := verifyReader(bytes.NewReader(data), int64(len(data)))
		_, err := gguf.Parse(bytes.NewReader(data), int64(len(data)), "fuzz.gguf")
		if (err == nil) != v.OK {
			t.Fatalf("reader error %v, verdict OK=%v %v", err, v.OK, v.Problems)
		}
		if v.OK != (len(v.Problems) == 0) {
			t.Fatalf("verdict OK=%v with problems %v", v.OK, v.Problems)
		}
	})
}

// TestTextIsSafeToPrint: names and keys with terminal escapes are shown
// escaped in text output.
func TestTextIsSafeToPrint(t *testing.T) {
	m := testModel()
	m.KV = append(m.KV, formats.KV{Key: "evil\x1b[2J", Value: "\x1b]0;title\a"})
	m.Tensors[0].Name = "tok\x1b[31m"
	rep, err := Run(writeModel(t, m), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(text.String(), "\x1b\a") {
		t.Errorf("control characters reached the output:\n%q", text.String())
	}
	if !strings.Contains(text.String(), `"evil\x1b[2J"`) {
		t.Errorf("escaped key missing:\n%s", text.String())
	}
}

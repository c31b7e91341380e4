package pytorch

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats/safetensors"
	"github.com/llqt/llqt/internal/fixtures"
)

// testTensor is one entry of a hand-made checkpoint.
type testTensor struct {
	name    string
	storage string // torch storage class, e.g. "FloatStorage"
	key     string
	numel   int
	offset  int
	size    []int
	stride  []int
}

func pickleString(b *bytes.Buffer, s string) {
	b.WriteByte('X')
	binary.Write(b, binary.LittleEndian, uint32(len(s)))
	b.WriteString(s)
}

func pickleInt(b *bytes.Buffer, v int) {
	b.WriteByte('J')
	binary.Write(b, binary.LittleEndian, int32(v))
}

func pickleInts(b *bytes.Buffer, v []int) {
	b.WriteByte('(')
	for _, x := range v {
		pickleInt(b, x)
	}
	b.WriteByte('t')
}

// statePickle writes the pickle torch.save produces for a state dict
// (protocol 2, memo-free); extra is spliced in before the last value.
func statePickle(ts []testTensor) []byte {
	var b bytes.Buffer
	b.WriteString("\x80\x02}(")
	for _, t := range ts {
		pickleString(&b, t.name)
		b.WriteString("ctorch._utils\n_rebuild_tensor_v2\n(")
		b.WriteByte('(')
		pickleString(&b, "storage")
		b.WriteString("ctorch\n" + t.storage + "\n")
		pickleString(&b, t.key)
		pickleString(&b, "cpu")
		pickleInt(&b, t.numel)
		b.WriteString("tQ")
		pickleInt(&b, t.offset)
		pickleInts(&b, t.size)
		pickleInts(&b, t.stride)
		b.WriteString("\x89ccollections\nOrderedDict\n)Rtq\x00R")
	}
	b.WriteString("u.")
	return b.Bytes()
}

// writeZip writes a torch.save-style archive: every entry stored unless
// deflate names it.
func writeZip(t testing.TB, path string, entries map[string][]byte, order []string, deflate string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range order {
		m := zip.Store
		if name == deflate {
			m = zip.Deflate
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: m})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(entries[name])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkpointBytes builds an archive of ts with storages filled with
// counting bytes.
func checkpointZip(t testing.TB, dir, file string, ts []testTensor, pkl []byte, deflate string) (string, map[string][]byte) {
	t.Helper()
	entries := map[string][]byte{"archive/data.pkl": pkl, "archive/byteorder": []byte("little")}
	order := []string{"archive/data.pkl", "archive/byteorder"}
	elem := map[string]int{"FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "LongStorage": 8}
	for _, x := range ts {
		name := "archive/data/" + x.key
		if _, ok := entries[name]; ok {
			continue
		}
		data := make([]byte, x.numel*elem[x.storage])
		for i := range data {
			data[i] = byte(i*7 + len(x.key))
		}
		entries[name] = data
		order = append(order, name)
	}
	path := filepath.Join(dir, file)
	writeZip(t, path, entries, order, deflate)
	return path, entries
}

var twoTensors = []testTensor{
	{name: "b.weight", storage: "FloatStorage", key: "0", numel: 6, size: []int{2, 3}, stride: []int{3, 1}},
	{name: "a.bias", storage: "BFloat16Storage", key: "1", numel: 8, offset: 2, size: []int{4}, stride: []int{1}},
	{name: "shared.view", storage: "FloatStorage", key: "0", numel: 6, offset: 3, size: []int{1, 3}, stride: []int{7, 1}},
}

func TestParseHandMade(t *testing.T) {
	dir := t.TempDir()
	path, entries := checkpointZip(t, dir, "pytorch_model.bin", twoTensors, statePickle(twoTensors), "")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := []struct {
		name  string
		dtype safetensors.DType
		shape []uint64
		data  []byte
	}{
		{"b.weight", safetensors.F32, []uint64{2, 3}, entries["archive/data/0"]},
		{"a.bias", safetensors.BF16, []uint64{4}, entries["archive/data/1"][4:12]},
		{"shared.view", safetensors.F32, []uint64{1, 3}, entries["archive/data/0"][12:24]},
	}
	if len(f.Tensors) != len(want) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(want))
	}
	for i, w := range want {
		ti := &f.Tensors[i]
		if ti.Name != w.name || ti.DType != w.dtype || !equal(ti.Shape, w.shape) {
			t.Errorf("tensor %d: %s %s %v, want %s %s %v", i, ti.Name, ti.DType, ti.Shape, w.name, w.dtype, w.shape)
			continue
		}
		got, err := f.Data(ti)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, w.data) {
			t.Errorf("%s: data %v, want %v", w.name, got, w.data)
		}
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseRefuses(t *testing.T) {
	one := twoTensors[:1]
	good := statePickle(one)
	cases := []struct {
		name    string
		ts      []testTensor
		pkl     []byte
		deflate string
		want    string
	}{
		{"os.system global", one, []byte("\x80\x02cos\nsystem\n(X\x02\x00\x00\x00lstR."), "", "os.system"},
		{"builtins.eval via STACK_GLOBAL", one, []byte("\x80\x04\x8c\x08builtins\x8c\x04eval\x93."), "", "builtins.eval"},
		{"model class", one, []byte("\x80\x02cmymodule\nMyModel\n)R."), "", "mymodule.MyModel"},
		{"unknown opcode", one, []byte("\x80\x02}I1\n."), "", "opcode 0x49"},
		{"truncated", one, good[:len(good)/2], "", "pickle"},
		{"not a dict", one, []byte("\x80\x02K\x05."), "", "not a state dict"},
		{"compressed storage", one, good, "archive/data/0", "compressed"},
		{"non-contiguous", []testTensor{{name: "w", storage: "FloatStorage", key: "0", numel: 6, size: []int{3, 2}, stride: []int{1, 3}}},
			nil, "", "contiguous"},
		{"view past storage", []testTensor{{name: "w", storage: "FloatStorage", key: "0", numel: 6, offset: 4, size: []int{3}, stride: []int{1}}},
			nil, "", "overruns"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkl := c.pkl
			if pkl == nil {
				pkl = statePickle(c.ts)
			}
			path, _ := checkpointZip(t, t.TempDir(), "pytorch_model.bin", c.ts, pkl, c.deflate)
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) || !errors.Is(err, ErrFormat) {
				t.Errorf("error %q: want it to name %q and the file, and wrap ErrFormat", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestOpenDirSharded(t *testing.T) {
	dir := t.TempDir()
	a := []testTensor{twoTensors[0]}
	b := []testTensor{twoTensors[1]}
	checkpointZip(t, dir, "pytorch_model-00001-of-00002.bin", a, statePickle(a), "")
	checkpointZip(t, dir, "pytorch_model-00002-of-00002.bin", b, statePickle(b), "")
	index := `{"weight_map": {"b.weight": "pytorch_model-00001-of-00002.bin", "a.bias": "pytorch_model-00002-of-00002.bin"}}`
	if err := os.WriteFile(filepath.Join(dir, IndexName), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range c.Tensors {
		names = append(names, x.Name)
	}
	c.Close()
	if strings.Join(names, ",") != "b.weight,a.bias" {
		t.Errorf("tensors %v, want shard order b.weight, a.bias", names)
	}
	// An index that puts a tensor in the wrong shard is refused.
	bad := `{"weight_map": {"b.weight": "pytorch_model-00002-of-00002.bin", "a.bias": "pytorch_model-00002-of-00002.bin"}}`
	os.WriteFile(filepath.Join(dir, IndexName), []byte(bad), 0o644)
	if c, err := OpenDir(dir); err == nil {
		c.Close()
		t.Error("accepted a wrong index")
	}
}

// TestGoldenTinyLlamaBin: the .bin holds the same bytes as the
// safetensors checkpoint, tensor for tensor.
func TestGoldenTinyLlamaBin(t *testing.T) {
	c, err := OpenDir(fixtures.Path(t, "tiny-llama-bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ref, err := safetensors.OpenDir(fixtures.Path(t, "tiny-llama-hf"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if len(c.Tensors) != len(ref.Tensors) {
		t.Fatalf("%d tensors, want %d", len(c.Tensors), len(ref.Tensors))
	}
	for _, x := range c.Tensors {
		r, ok := ref.Tensor(x.Name)
		if !ok {
			t.Errorf("tensor %s not in the safetensors checkpoint", x.Name)
			continue
		}
		a, err := x.ReadRaw()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := r.ReadRaw()
		if x.DType != r.DType || !equal(x.Shape, r.Shape) || !bytes.Equal(a, b) {
			t.Errorf("%s: %s %v differs from %s %v", x.Name, x.DType, x.Shape, r.DType, r.Shape)
		}
	}
}

func FuzzUnpickle(f *testing.F) {
	f.Add(statePickle(twoTensors))
	f.Add([]byte("\x80\x02cos\nsystem\n."))
	f.Add([]byte("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94K\x01u."))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := unpickle(data)
		if err != nil && (!errors.Is(err, ErrFormat) || strings.Contains(err.Error(), "\n")) {
			t.Fatalf("error %q: want one line wrapping ErrFormat", err)
		}
	})
}

func FuzzParse(f *testing.F) {
	dir := f.TempDir()
	path, _ := checkpointZip(f, dir, "seed.bin", twoTensors, statePickle(twoTensors), "")
	seed, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		infos, err := Parse(bytes.NewReader(data), int64(len(data)), "fuzz.bin")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.bin") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for _, ti := range infos {
			if ti.End > uint64(len(data)) || ti.Begin > ti.End {
				t.Fatalf("tensor %s range [%d,%d) outside %d bytes", ti.Name, ti.Begin, ti.End, len(data))
			}
		}
	})
}

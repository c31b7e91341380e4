package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckOutputFile(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "m.gguf")
	if err := os.WriteFile(existing, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		out   string
		force bool
		want  string // "" for no error
	}{
		{filepath.Join(dir, "new.gguf"), false, ""},
		{existing, false, "output exists (use --force to overwrite)"},
		{existing, true, ""},
		{dir, true, "output is a directory; give a file name such as " + filepath.Join(dir, "model.gguf")},
		{filepath.Join(dir, "nope", "m.gguf"), false, "the output folder " + filepath.Join(dir, "nope") + " does not exist"},
		{filepath.Join(existing, "m.gguf"), false, "not a directory"}, // stat fails with ENOTDIR
	}
	for _, c := range cases {
		err := CheckOutputFile(c.out, c.force)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s (force %v): %v", c.out, c.force, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s (force %v): error %v, want %q", c.out, c.force, err, c.want)
		}
	}
}

func TestRunningOutput(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if r := NewRunningOutput(&stdout, &stderr, true); r.Writer() != nil {
		t.Error("quiet running output has a writer")
	}
	r := NewRunningOutput(&stdout, &stderr, false)
	if r.Writer() != &stdout {
		t.Fatal("off a terminal the running output is not standard output")
	}
	r.Writer().Write([]byte("[1]5.0\n"))
	r.Release()
	if stdout.String() != "[1]5.0\n" {
		t.Errorf("stdout %q", stdout.String())
	}
}

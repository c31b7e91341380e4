package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCommitAndAbort(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "out.bin")
	if err := WriteFile(dest, []byte("hello"), false); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dest)
	if err != nil || string(got) != "hello" {
		t.Fatalf("read back %q, %v", got, err)
	}
	st, _ := os.Stat(dest)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	if err := WriteFile(dest, []byte("again"), false); err == nil {
		t.Error("overwrote without permission")
	}
	if err := WriteFile(dest, []byte("again"), true); err != nil {
		t.Fatal(err)
	}
	f, err := Create(filepath.Join(dir, "aborted.bin"), false)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("partial"))
	AbortAll()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "out.bin" {
		t.Errorf("directory holds %v, want only out.bin", entries)
	}
}

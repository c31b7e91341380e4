package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/internal/fixtures"
)

// TestMetaEditsMatchGGUFNewMetadata: llqt meta set/delete on a copy of
// golden/tiny-llama-Q4_K_M.gguf gives the bytes llama.cpp b4748's
// gguf_new_metadata.py writes for the same edit (testdata/meta-edit.json),
// in place when the header still fits and by a rewrite otherwise.
func TestMetaEditsMatchGGUFNewMetadata(t *testing.T) {
	var ref struct {
		Input string `json:"input"`
		Cases []struct {
			Name     string   `json:"name"`
			Template string   `json:"template"`
			LLQT     []string `json:"llqt"`
			Mode     string   `json:"mode"`
			SHA256   string   `json:"sha256"`
		} `json:"cases"`
	}
	b, err := os.ReadFile("testdata/meta-edit.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	in := fixtures.Path(t, ref.Input)
	orig, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ref.Cases {
		t.Run(c.Name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "m.gguf")
			if err := os.WriteFile(p, orig, 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"meta", c.LLQT[0], p}
			for _, a := range c.LLQT[1:] {
				if a == "TEMPLATE_FILE" {
					a = filepath.Join(dir, "tpl.jinja")
					if err := os.WriteFile(a, []byte(c.Template), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				args = append(args, a)
			}
			stdout, _, err := runLLQT(t, append(args, "--json")...)
			if err != nil {
				t.Fatal(err)
			}
			var rep metaEditReport
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatalf("%v: %s", err, stdout)
			}
			if rep.Mode != c.Mode {
				t.Errorf("edit was %s, want %s", rep.Mode, c.Mode)
			}
			if got := sha256File(t, p); got != c.SHA256 {
				t.Errorf("sha256 %s, gguf_new_metadata.py wrote %s", got, c.SHA256)
			}
			if c.Template != "" {
				got, _, err := runLLQT(t, "meta", "get", p, "tokenizer.chat_template")
				if err != nil || got != c.Template+"\n" {
					t.Errorf("meta get gives %q, %v", got, err)
				}
			}
		})
	}
}

func TestMetaCommandErrors(t *testing.T) {
	in := fixtures.Path(t, "golden/tiny-llama-Q4_K_M.gguf")
	orig, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(p, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"meta", "get", p, "no.such.key"}, "no such metadata key"},
		{[]string{"meta", "delete", p, "no.such.key"}, "no such metadata key"},
		{[]string{"meta", "set", p, "a.b", "u8:300"}, "out of range"},
		{[]string{"meta", "set", p, "a.b"}, "missing TYPE:VALUE"},
		{[]string{"meta", "set", p, "general.alignment", "str:x"}, "general.alignment"},
	} {
		_, _, err := runLLQT(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.args[1:], err, tc.want)
		}
	}
	if got := sha256File(t, p); got != sha256File(t, in) {
		t.Error("a refused edit changed the file")
	}
	out, _, err := runLLQT(t, "meta", "dump", p, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Metadata []kvJSONEntry `json:"metadata"`
		Tensors  []any         `json:"tensors"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Tensors) != 57 || len(d.Metadata) == 0 || d.Metadata[0].Key != "general.architecture" {
		t.Errorf("dump: %d keys (first %v), %d tensors", len(d.Metadata), d.Metadata, len(d.Tensors))
	}
}

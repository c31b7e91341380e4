package main

import (
	"os"
	"strings"
	"testing"

	"github.com/llqt/llqt/internal/fixtures"
)

// TestTokenizeHF: tokenize --hf on a folder with a tokenizer.json gives
// Hugging Face's ids for a whole text, and tokenize on the vocab GGUF
// made from it gives llama.cpp's.
func TestTokenizeHF(t *testing.T) {
	text := fixtures.Path(t, "text/tinystories_eval.txt")
	for _, name := range []string{"llama3", "qwen3"} {
		t.Run(name, func(t *testing.T) {
			dir := fixtures.Path(t, "hf-tokenizers/"+name)
			for _, c := range []struct {
				args []string
				want string
			}{
				{[]string{"tokenize", "--hf", dir, "-f", text, "--ids", "--no-bos"}, dir + "/tinystories_eval.ids"},
				{[]string{"tokenize", dir + "/vocab-" + name + ".gguf", "-f", text, "--ids", "--no-bos"}, dir + "/tinystories_eval.llamacpp.ids"},
			} {
				want, err := os.ReadFile(c.want)
				if err != nil {
					t.Fatal(err)
				}
				got, _, err := runEngineCmd(t, c.args...)
				if err != nil {
					t.Fatal(err)
				}
				if strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
					t.Errorf("%v: ids differ from %s (%d vs %d bytes)", c.args[1:3], c.want, len(got), len(want))
				}
			}
		})
	}
}

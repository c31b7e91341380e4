package convert

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzTokenizerJSON feeds arbitrary tokenizer.json contents (with a
// matching tokenizer_config.json) to the BPE vocabulary reader and the
// special-token loader: they must return a vocabulary or an error, never
// panic, and a vocabulary they return must be self-consistent.
func FuzzTokenizerJSON(f *testing.F) {
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\s+"}},{"type":"ByteLevel"}]},"added_tokens":[{"id":3,"content":"<s>","special":true}]}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0},"merges":[["a","a"]]},"added_tokens":[{"id":-1,"content":""}]}`))
	f.Add([]byte(`{"model":{"type":"Unigram"}}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":99999999}}}`))
	f.Add([]byte(`null`))
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"bos_token":"<s>","add_bos_token":true,"chat_template":"{{x}}"}`), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		v, found, err := BPEVocab(dir, 0, "llama-bpe")
		if err != nil || !found {
			return
		}
		if len(v.Tokens) != len(v.Types) {
			t.Fatalf("%d tokens but %d token types", len(v.Tokens), len(v.Types))
		}
		_, _ = loadSpecialVocab(dir, []string{"bos", "eos", "unk", "pad"}, len(v.Tokens), true, func(string, ...any) {})
	})
}

package tokenizer

import (
	"strings"
	"testing"
)

// FuzzFromHFJSON: any tokenizer.json either builds a tokenizer or is
// refused with an error naming the file; a tokenizer it builds encodes a
// text to ids inside its vocabulary.
func FuzzFromHFJSON(f *testing.F) {
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"(?i:'s)|\\p{L}+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated"},{"type":"ByteLevel","use_regex":false}]},"added_tokens":[{"id":3,"content":"<s>","special":true}],"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>"}},{"Sequence":{"id":"A"}}],"special_tokens":{"<s>":{"ids":[3]}}},"normalizer":{"type":"NFC"}}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0},"merges":[["a","a"]],"ignore_merges":true},"pre_tokenizer":{"type":"ByteLevel"}}`))
	f.Add([]byte(`{"model":{"type":"WordPiece"}}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":-1}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := FromHFJSON(data, "fuzz/tokenizer.json")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz/tokenizer.json") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		ids, err := tok.Encode("ab a\u0301 <s>x", true, true)
		if err != nil {
			return
		}
		for _, id := range ids {
			if id < 0 || int(id) >= len(tok.tokens) {
				t.Fatalf("id %d outside a vocabulary of %d", id, len(tok.tokens))
			}
		}
	})
}

package convert

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/internal/fixtures"
)

func TestSentencePieceFixture(t *testing.T) {
	b, err := os.ReadFile(fixtures.Path(t, "tiny-llama-hf/tokenizer.model"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseSentencePiece(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Pieces) != 4096 || m.ModelType != 2 || !m.ByteFallback || !m.AddDummyPrefix || m.RemoveExtraWhitespaces {
		t.Errorf("%d pieces, model type %d, byte fallback %v, dummy prefix %v, remove ws %v",
			len(m.Pieces), m.ModelType, m.ByteFallback, m.AddDummyPrefix, m.RemoveExtraWhitespaces)
	}
	want := []Piece{{"<unk>", 0, PieceUnknown}, {"<s>", 0, PieceControl}, {"</s>", 0, PieceControl}, {"<0x00>", 0, PieceByte}}
	if !reflect.DeepEqual(m.Pieces[:4], want) {
		t.Errorf("first pieces %v", m.Pieces[:4])
	}
	if p := m.Pieces[259]; p.Type != PieceNormal || p.Score > 0 || m.Pieces[300].Score >= 0 {
		t.Errorf("first merge %+v", p)
	}
}

func TestSentencePieceRoundTrip(t *testing.T) {
	m := &SPModel{ModelType: 2, ByteFallback: true, AddDummyPrefix: false, RemoveExtraWhitespaces: true, Pieces: []Piece{
		{"<unk>", 0, PieceUnknown}, {"<s>", 0, PieceControl}, {"\u2581the", -1.5, PieceNormal},
		{"<pad>", 0, PieceUserDefined}, {"x", -3, PieceUnused}, {"<0x0A>", 0, PieceByte}, {"", 0, PieceNormal},
	}}
	got, err := ParseSentencePiece(EncodeSentencePiece(m))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
	}
}

func TestSentencePieceMalformed(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":          {},
		"truncated tag":  {0x80},
		"bad length":     {0x0a, 0x05, 0x01},
		"bad piece type": {0x0a, 0x02, 0x18, 0x09},
		"end group":      {0x0c},
	} {
		if _, err := ParseSentencePiece(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseSentencePiece(f *testing.F) {
	f.Add(EncodeSentencePiece(&SPModel{Pieces: []Piece{{"<unk>", 0, PieceUnknown}, {"a", -1, PieceNormal}}}))
	f.Add([]byte{0x0a, 0x02, 0x18, 0x09})
	f.Add([]byte{0x12, 0x03, 0x18, 0x02, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseSentencePiece(b)
		if err != nil {
			return
		}
		// What parses re-encodes to something that parses the same.
		again, err := ParseSentencePiece(EncodeSentencePiece(m))
		if err != nil || len(again.Pieces) != len(m.Pieces) {
			t.Fatalf("re-encoded model: %v, %d pieces, want %d", err, len(again.Pieces), len(m.Pieces))
		}
	})
}

func FuzzConfig(f *testing.F) {
	f.Add([]byte(`{"architectures":["LlamaForCausalLM"],"hidden_size":256,"intermediate_size":768,"num_attention_heads":8,"num_key_value_heads":4,"num_hidden_layers":6,"vocab_size":4096,"head_dim":32,"rope_scaling":{"type":"linear","factor":2}}`))
	f.Add([]byte(`{"architectures":["MistralForCausalLM"],"hidden_size":1e3,"num_attention_heads":-1,"vocab_size":null,"tie_word_embeddings":"yes"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := ParseConfig(b, "config.json")
		if err != nil {
			return
		}
		_, arch, err := lookup(cfg)
		if err != nil {
			return
		}
		bl := &Builder{Config: cfg, Model: &formats.Model{}}
		l, ok := arch.(*llama)
		if !ok {
			return
		}
		hp, err := readDecoderHParams(cfg, false)
		if err != nil {
			return
		}
		l.hp = hp
		if hp.heads == 0 || hp.kvHeads == 0 || hp.headDim%2 != 0 || hp.heads%hp.kvHeads != 0 {
			t.Fatalf("accepted inconsistent hyperparameters %+v", hp)
		}
		_ = bl.CommonParams("llama")
		_ = l.Params(bl)
	})
}

func writeFiles(t *testing.T, files map[string]any) string {
	t.Helper()
	dir := t.TempDir()
	for name, v := range files {
		var b []byte
		if s, ok := v.(string); ok {
			b = []byte(s)
		} else {
			b, _ = json.Marshal(v)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestSentencePieceAddedTokens(t *testing.T) {
	sp := &SPModel{Pieces: []Piece{{"<unk>", 0, PieceUnknown}, {"<s>", 0, PieceControl}, {"</s>", 0, PieceControl},
		{"a", -1, PieceNormal}, {"<x>", 0, PieceUserDefined}}}
	dir := writeFiles(t, map[string]any{
		"tokenizer.model":   string(EncodeSentencePiece(sp)),
		"added_tokens.json": `{"<extra>": 6, "<far>": 99}`,
		"tokenizer_config.json": map[string]any{"added_tokens_decoder": map[string]any{
			"0": map[string]any{"content": "<unk>", "special": true},
			"7": map[string]any{"content": "\u2581user\u2581word", "special": false},
			"8": map[string]any{"content": "<|im_end|>", "special": false},
		}},
	})
	var warnings []string
	v, found, err := SentencePieceVocab(dir, 10, func(f string, a ...any) { warnings = append(warnings, f) })
	if err != nil || !found {
		t.Fatal(err, found)
	}
	wantTok := []string{"<unk>", "<s>", "</s>", "a", "<x>", "[PAD5]", "<extra>", " user word", "<|im_end|>", "[PAD9]"}
	wantTyp := []int32{TokenControl, TokenControl, TokenControl, TokenNormal, TokenNormal, TokenUnused, TokenUserDefined, TokenUserDefined, TokenControl, TokenUnused}
	wantSc := []float32{-1000, 0, 0, -1, 0, -10000, -1000, -1000, -1000, -10000}
	if !reflect.DeepEqual(v.Tokens, wantTok) || !reflect.DeepEqual(v.Types, wantTyp) || !reflect.DeepEqual(v.Scores, wantSc) {
		t.Errorf("got\n%q\n%v\n%v", v.Tokens, v.Types, v.Scores)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "out of range") {
		t.Errorf("warnings %v", warnings)
	}
}

// llama3Regex is Llama 3's Split pre-tokenizer pattern.
const llama3Regex = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

func bpeTokenizer(regex string, merges any) map[string]any {
	return map[string]any{
		"model": map[string]any{"type": "BPE", "vocab": map[string]int{"a": 0, "b": 1, "ab": 2, "Ġ": 3}, "merges": merges},
		"added_tokens": []map[string]any{
			{"id": 4, "content": "<|begin_of_text|>", "special": true},
			{"id": 5, "content": "<|eot_id|>", "special": true},
			{"id": 6, "content": "plain\u2581added", "special": false},
		},
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []map[string]any{
			{"type": "Split", "pattern": map[string]any{"Regex": regex}, "behavior": "Isolated"},
			{"type": "ByteLevel", "add_prefix_space": false},
		}},
	}
}

func TestBPEVocab(t *testing.T) {
	for name, merges := range map[string]any{"strings": []string{"a b"}, "pairs": [][]string{{"a", "b"}}} {
		t.Run(name, func(t *testing.T) {
			dir := writeFiles(t, map[string]any{
				"tokenizer.json": bpeTokenizer(llama3Regex, merges),
				"tokenizer_config.json": map[string]any{"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
					"chat_template": "{{ bos_token }}"},
				"config.json": map[string]any{"bos_token_id": 0, "eos_token_id": []int{5, 4}},
			})
			v, found, err := BPEVocab(dir, 8, "llama-bpe")
			if err != nil || !found {
				t.Fatal(err, found)
			}
			if v.Model != "gpt2" || v.Pre != "llama-bpe" {
				t.Errorf("model %s pre %s", v.Model, v.Pre)
			}
			wantTok := []string{"a", "b", "ab", "Ġ", "<|begin_of_text|>", "<|eot_id|>", "plain added", "[PAD7]"}
			wantTyp := []int32{1, 1, 1, 1, 3, 3, 4, 5}
			if !reflect.DeepEqual(v.Tokens, wantTok) || !reflect.DeepEqual(v.Types, wantTyp) {
				t.Errorf("got %q %v", v.Tokens, v.Types)
			}
			b := &Builder{Model: &formats.Model{}}
			sv, err := loadSpecialVocab(dir, defaultSpecialTypes, -1, true, b.Warn)
			if err != nil {
				t.Fatal(err)
			}
			if err := sv.add(b); err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, kv := range b.Model.KV {
				keys = append(keys, kv.Key)
			}
			wantKeys := []string{"tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.chat_template"}
			if !reflect.DeepEqual(keys, wantKeys) {
				t.Errorf("keys %v, want %v", keys, wantKeys)
			}
			// tokenizer.json's ids win over config.json's bos_token_id 0.
			if id, _ := b.Model.KV.Uint("tokenizer.ggml.bos_token_id"); id != 4 {
				t.Errorf("bos %d, want 4", id)
			}
			if id, _ := b.Model.KV.Uint("tokenizer.ggml.eos_token_id"); id != 5 {
				t.Errorf("eos %d, want 5", id)
			}
			m, _ := b.Model.KV.Get("tokenizer.ggml.merges")
			if !reflect.DeepEqual(m.(formats.Array).Values, []string{"a b"}) {
				t.Errorf("merges %v", m)
			}
		})
	}
	t.Run("unknown pre-tokenizer", func(t *testing.T) {
		dir := writeFiles(t, map[string]any{"tokenizer.json": bpeTokenizer(`\s+`, []string{"a b"})})
		enc := func([]byte, string, string) ([]int32, error) { return []int32{1, 2, 3}, nil }
		_, err := detectPre(dir, "", enc)
		h := checkHash([]int32{1, 2, 3})
		if err == nil || !strings.Contains(err.Error(), h) || !strings.Contains(err.Error(), "tokenizer.json") || !strings.Contains(err.Error(), "--pre") {
			t.Errorf("error %v: want the hash %s, the file and --pre", err, h)
		}
		if pre, err := detectPre(dir, "qwen2", enc); err != nil || pre != "qwen2" {
			t.Errorf("--pre qwen2: %q %v", pre, err)
		}
		if _, err := detectPre(dir, "no-such-pre", enc); err == nil || !strings.Contains(err.Error(), "no-such-pre") {
			t.Errorf("--pre no-such-pre: %v", err)
		}
	})
	t.Run("pair merges with spaces", func(t *testing.T) {
		dir := writeFiles(t, map[string]any{"tokenizer.json": bpeTokenizer(llama3Regex, [][]string{{"a b", "c"}})})
		sv, err := loadSpecialVocab(dir, defaultSpecialTypes, -1, true, func(string, ...any) {})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sv.merges, []string{"a\u0120b c"}) {
			t.Errorf("merges %q", sv.merges)
		}
	})
}

func TestSpecialVocabPrecedence(t *testing.T) {
	dir := writeFiles(t, map[string]any{
		"config.json":           `{"bos_token_id": 7, "eos_token_id": 2, "pad_token_id": 50, "unk_token_id": 0, "sep_token_id": 1.0, "mask_token_id": null}`,
		"tokenizer_config.json": map[string]any{"add_bos_token": false, "add_eos_token": true, "chat_template": []map[string]any{{"name": "default", "template": "D"}, {"name": "tool use", "template": "T"}}},
	})
	var warns []string
	b := &Builder{Model: &formats.Model{}}
	sv, err := loadSpecialVocab(dir, defaultSpecialTypes, 10, false, func(f string, a ...any) { warns = append(warns, f) })
	if err != nil {
		t.Fatal(err)
	}
	if err := sv.add(b); err != nil {
		t.Fatal(err)
	}
	want := formats.KVs{
		{Key: "tokenizer.ggml.bos_token_id", Value: uint32(7)},
		{Key: "tokenizer.ggml.eos_token_id", Value: uint32(2)},
		{Key: "tokenizer.ggml.unknown_token_id", Value: uint32(0)},
		{Key: "tokenizer.ggml.add_bos_token", Value: false},
		{Key: "tokenizer.ggml.add_eos_token", Value: true},
		{Key: "tokenizer.chat_template.tool_use", Value: "T"},
		{Key: "tokenizer.chat_templates", Value: formats.Array{Elem: formats.ValString, Values: []string{"tool_use"}}},
		{Key: "tokenizer.chat_template", Value: "D"},
	}
	if !reflect.DeepEqual(b.Model.KV, want) {
		t.Errorf("got %v\nwant %v", b.Model.KV, want)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "out of range") {
		t.Errorf("warnings %v (want the pad id 50 skipped)", warns)
	}
}

func TestPermuteRows(t *testing.T) {
	// 2 heads of 4 rows (pairs split in halves) of 1 column:
	// head rows [a0 a1 b0 b1] become [a0 b0 a1 b1].
	data := []float32{0, 1, 2, 3, 4, 5, 6, 7}
	if err := (permuteRows{nHead: 2}).Apply(data, []uint64{1, 8}); err != nil {
		t.Fatal(err)
	}
	if want := []float32{0, 2, 1, 3, 4, 6, 5, 7}; !reflect.DeepEqual(data, want) {
		t.Errorf("got %v, want %v", data, want)
	}
	bias := []float32{0, 1, 2, 3}
	if err := (permuteRows{nHead: 1}).Apply(bias, []uint64{4}); err != nil || !reflect.DeepEqual(bias, []float32{0, 2, 1, 3}) {
		t.Errorf("bias %v %v", bias, err)
	}
	if err := (permuteRows{nHead: 3}).Apply(make([]float32, 8), []uint64{1, 8}); err == nil {
		t.Error("8 rows accepted for 3 heads")
	}
}

func BenchmarkPermuteRows(b *testing.B) {
	data := make([]float32, 2048*2048)
	b.SetBytes(int64(4 * len(data)))
	for b.Loop() {
		_ = permuteRows{nHead: 32}.Apply(data, []uint64{2048, 2048})
	}
}

func TestSizeLabel(t *testing.T) {
	for n, want := range map[uint64]string{6819072: "6.8M", 135488: "135K", 1100048384: "1.1B", 7241732096: "7.2B",
		70553706496: "71B", 999: "1.0K", 13000000: "13M", 405000000000: "405B", 1500000000000: "1.5T"} {
		if got := SizeLabel(n); got != want {
			t.Errorf("SizeLabel(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestTitleFromID(t *testing.T) {
	for in, want := range map[string]string{"tiny-llama-hf": "Tiny Llama Hf", "Llama-2-7b-chat-hf": "Llama 2 7b Chat Hf",
		"mistral-7b-v0.1": "Mistral 7b v0.1", "my_model": "My_Model", "TinyLlama-1.1B": "TinyLlama 1.1B"} {
		if got := titleFromID(in); got != want {
			t.Errorf("titleFromID(%q) = %q, want %q", in, got, want)
		}
	}
}

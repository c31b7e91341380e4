package convert

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/safetensors"
)

// decoderHParams are the hyperparameters every decoder-only transformer
// here shares, read from config.json and checked for consistency.
type decoderHParams struct {
	blocks, hidden, ff, heads, kvHeads, headDim, vocab uint64
	// experts is num_local_experts (0 for a dense model).
	experts uint64
	tied    bool
}

// readDecoderHParams reads the common hyperparameters. tiedDefault is the
// Hugging Face config class's default for tie_word_embeddings.
func readDecoderHParams(c *Config, tiedDefault bool) (decoderHParams, error) {
	var hp decoderHParams
	need := func(keys ...string) (uint64, error) {
		v, err := c.RequireUint32(keys...)
		return uint64(v), err
	}
	var err error
	if hp.blocks, err = need("n_layers", "num_hidden_layers", "n_layer", "num_layers"); err != nil {
		return hp, err
	}
	if hp.hidden, err = need("hidden_size", "n_embd"); err != nil {
		return hp, err
	}
	if hp.ff, err = need("intermediate_size", "n_inner"); err != nil {
		return hp, err
	}
	if hp.heads, err = need("num_attention_heads", "n_head"); err != nil {
		return hp, err
	}
	if hp.vocab, err = need("vocab_size"); err != nil {
		return hp, err
	}
	hp.kvHeads = hp.heads
	if c.Has("num_key_value_heads") {
		if hp.kvHeads, err = need("num_key_value_heads"); err != nil {
			return hp, err
		}
	}
	if c.Has("head_dim") {
		if hp.headDim, err = need("head_dim"); err != nil {
			return hp, err
		}
	} else {
		if hp.hidden%hp.heads != 0 {
			return hp, c.errf("hidden_size", "%d is not divisible by num_attention_heads %d (and no head_dim is given)", hp.hidden, hp.heads)
		}
		hp.headDim = hp.hidden / hp.heads
	}
	if hp.headDim%2 != 0 {
		return hp, c.errf("head_dim", "%d is odd; rotary embeddings need pairs", hp.headDim)
	}
	if hp.heads%hp.kvHeads != 0 {
		return hp, c.errf("num_key_value_heads", "%d does not divide num_attention_heads %d", hp.kvHeads, hp.heads)
	}
	hp.tied = tiedDefault
	if tied, ok, err := c.Bool("tie_word_embeddings"); err != nil {
		return hp, err
	} else if ok {
		hp.tied = tied
	}
	if c.Has("num_local_experts") {
		if hp.experts, err = need("num_local_experts"); err != nil {
			return hp, err
		}
		used, err := need("num_experts_per_tok")
		if err != nil {
			return hp, err
		}
		if used > hp.experts {
			return hp, c.errf("num_experts_per_tok", "%d is more than num_local_experts %d", used, hp.experts)
		}
	}
	return hp, nil
}

func (hp *decoderHParams) describe() string {
	s := fmt.Sprintf("hidden_size %d, intermediate_size %d, %d heads, %d kv heads, head_dim %d, vocab_size %d",
		hp.hidden, hp.ff, hp.heads, hp.kvHeads, hp.headDim, hp.vocab)
	if hp.experts > 0 {
		s += fmt.Sprintf(", %d experts", hp.experts)
	}
	return s
}

// tensorRule maps one Hugging Face tensor to its GGUF name and the shape
// config.json implies (torch order).
type tensorRule struct {
	hf, gguf string
	shape    []uint64
	// optional tensors (biases, a tied lm_head) may be absent.
	optional bool
}

// tensorTable is an architecture's tensor names: per-layer rules (names
// after "model.layers.N.") and global ones.
type tensorTable struct {
	arch   string
	layer  []tensorRule
	global []tensorRule
	// extra matches tensors handled outside the rules (Mixtral's experts);
	// it returns the expected shape.
	extra func(layerSuffix string) ([]uint64, bool)
}

var layerRE = regexp.MustCompile(`^model\.layers\.(\d+)\.(.+)$`)

func findRule(rules []tensorRule, hf string) (*tensorRule, bool) {
	for i := range rules {
		if rules[i].hf == hf {
			return &rules[i], true
		}
	}
	return nil, false
}

// lookup finds the rule of a checkpoint tensor; layer is "" for a global.
func (tt *tensorTable) lookup(name string) (rule *tensorRule, layer string, ok bool) {
	if m := layerRE.FindStringSubmatch(name); m != nil {
		r, ok := findRule(tt.layer, m[2])
		return r, m[1], ok
	}
	r, ok := findRule(tt.global, name)
	return r, "", ok
}

// check compares every checkpoint tensor's shape with the rule's and
// requires every non-optional tensor of every layer.
func (tt *tensorTable) check(b *Builder, hp *decoderHParams) error {
	if b.VocabOnly {
		return nil
	}
	why := hp.describe()
	for _, t := range b.Checkpoint.Tensors {
		if skipTensor(t.Name) {
			continue
		}
		var want []uint64
		ok := false
		if m := layerRE.FindStringSubmatch(t.Name); m != nil {
			bid, err := strconv.ParseUint(m[1], 10, 32)
			if err != nil || bid >= hp.blocks {
				return fmt.Errorf("%s: %w: tensor %s is for layer %s but config.json has %d layers",
					t.File.Path, ErrConfig, t.Name, m[1], hp.blocks)
			}
			if r, found := findRule(tt.layer, m[2]); found {
				want, ok = r.shape, true
			} else if tt.extra != nil {
				want, ok = tt.extra(m[2])
			}
		} else if r, found := findRule(tt.global, t.Name); found {
			want, ok = r.shape, true
		}
		if !ok {
			return fmt.Errorf("%s: tensor %s cannot be mapped to a GGUF tensor of architecture %s", t.File.Path, t.Name, tt.arch)
		}
		if !equalShape(t.Shape, want) {
			return fmt.Errorf("%s: %w: tensor %s has shape %v but config.json (%s) implies %v",
				t.File.Path, ErrConfig, t.Name, t.Shape, why, want)
		}
	}
	var required []string
	for _, r := range tt.global {
		if !r.optional {
			required = append(required, r.hf)
		}
	}
	for i := uint64(0); i < hp.blocks; i++ {
		for _, r := range tt.layer {
			if !r.optional {
				required = append(required, fmt.Sprintf("model.layers.%d.%s", i, r.hf))
			}
		}
	}
	for _, name := range required {
		if _, ok := b.Checkpoint.Tensor(name); !ok {
			return fmt.Errorf("%s: %w: tensor %s is missing from the checkpoint (config.json: %d layers, tie_word_embeddings %v)",
				b.Dir, ErrConfig, name, hp.blocks, hp.tied)
		}
	}
	return nil
}

// ggufName is the output name of a checkpoint tensor.
func (tt *tensorTable) ggufName(t *safetensors.Tensor) (string, error) {
	r, layer, ok := tt.lookup(t.Name)
	if !ok {
		return "", fmt.Errorf("%s: tensor %s cannot be mapped to a GGUF tensor of architecture %s", t.File.Path, t.Name, tt.arch)
	}
	if layer != "" {
		return "blk." + layer + "." + r.gguf, nil
	}
	return r.gguf, nil
}

func equalShape(a, b []uint64) bool {
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

// withBiases adds optional bias rules for the listed weights.
func withBiases(rules []tensorRule, weights ...string) []tensorRule {
	for _, w := range weights {
		r, ok := findRule(rules, w+".weight")
		if !ok {
			continue
		}
		rules = append(rules, tensorRule{hf: w + ".bias", gguf: strings.TrimSuffix(r.gguf, ".weight") + ".bias",
			shape: []uint64{r.shape[0]}, optional: true})
	}
	return rules
}

// llamaLayerRules are the tensors of a Llama-style layer (Llama, Mistral,
// Mixtral's attention, Qwen2, Qwen3, Gemma).
func llamaLayerRules(hp *decoderHParams) []tensorRule {
	q, kv := hp.heads*hp.headDim, hp.kvHeads*hp.headDim
	rules := []tensorRule{
		{hf: "input_layernorm.weight", gguf: "attn_norm.weight", shape: []uint64{hp.hidden}},
		{hf: "post_attention_layernorm.weight", gguf: "ffn_norm.weight", shape: []uint64{hp.hidden}},
		{hf: "self_attn.q_proj.weight", gguf: "attn_q.weight", shape: []uint64{q, hp.hidden}},
		{hf: "self_attn.k_proj.weight", gguf: "attn_k.weight", shape: []uint64{kv, hp.hidden}},
		{hf: "self_attn.v_proj.weight", gguf: "attn_v.weight", shape: []uint64{kv, hp.hidden}},
		{hf: "self_attn.o_proj.weight", gguf: "attn_output.weight", shape: []uint64{hp.hidden, q}},
	}
	if hp.experts == 0 {
		rules = append(rules,
			tensorRule{hf: "mlp.gate_proj.weight", gguf: "ffn_gate.weight", shape: []uint64{hp.ff, hp.hidden}},
			tensorRule{hf: "mlp.up_proj.weight", gguf: "ffn_up.weight", shape: []uint64{hp.ff, hp.hidden}},
			tensorRule{hf: "mlp.down_proj.weight", gguf: "ffn_down.weight", shape: []uint64{hp.hidden, hp.ff}},
		)
	}
	return rules
}

// llamaGlobalRules are the embedding, final norm and output head.
func llamaGlobalRules(hp *decoderHParams) []tensorRule {
	return []tensorRule{
		{hf: "model.embed_tokens.weight", gguf: "token_embd.weight", shape: []uint64{hp.vocab, hp.hidden}},
		{hf: "model.norm.weight", gguf: "output_norm.weight", shape: []uint64{hp.hidden}},
		{hf: "lm_head.weight", gguf: "output.weight", shape: []uint64{hp.vocab, hp.hidden}, optional: hp.tied},
	}
}

// addOne is Gemma's norm conversion: Hugging Face stores the RMSNorm
// multiplier as an offset from 1, llama.cpp wants the multiplier. It runs
// in float32 after the BF16 weights are widened, as the converter's torch
// code does.
type addOne struct{}

func (addOne) Name() string { return "add-one" }

func (addOne) Apply(data []float32, _ []uint64) error {
	for i := range data {
		data[i]++
	}
	return nil
}

// stackSource concatenates same-typed sources: Mixtral's experts stacked
// into one 3-D tensor, expert-major.
type stackSource struct {
	typ   ggml.Type
	parts []formats.Source
}

func (s *stackSource) Type() ggml.Type { return s.typ }

func (s *stackSource) ReadRaw() ([]byte, error) {
	var out []byte
	for _, p := range s.parts {
		raw, err := p.ReadRaw()
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make([]byte, 0, len(raw)*len(s.parts))
		}
		out = append(out, raw...)
	}
	return out, nil
}

// Parts lets a writer materialise one expert at a time.
func (s *stackSource) Parts() []formats.Source { return s.parts }

var (
	_ formats.Transform    = addOne{}
	_ formats.PartedSource = (*stackSource)(nil)
)

// qkNormRules are the per-head RMSNorm weights of the queries and keys
// (Qwen3, Gemma 3), kept as stored.
func qkNormRules(hp *decoderHParams) []tensorRule {
	return []tensorRule{
		{hf: "self_attn.q_norm.weight", gguf: "attn_q_norm.weight", shape: []uint64{hp.headDim}},
		{hf: "self_attn.k_norm.weight", gguf: "attn_k_norm.weight", shape: []uint64{hp.headDim}},
	}
}

// checkDecoder reads the common hyperparameters into hp and checks the
// checkpoint's tensors against the table built from them (the table needs
// hp filled in, hence a function).
func checkDecoder(b *Builder, hp *decoderHParams, tiedDefault bool, table func() *tensorTable) error {
	read, err := readDecoderHParams(b.Config, tiedDefault)
	if err != nil {
		return err
	}
	*hp = read
	return table().check(b, hp)
}

// addDecoderTensor renames t by the table and adds it with its transforms.
// With tied embeddings lm_head.weight is dropped: llama.cpp reuses
// token_embd.weight.
func addDecoderTensor(b *Builder, tt *tensorTable, tied bool, t *safetensors.Tensor, transforms ...formats.Transform) error {
	if t.Name == "lm_head.weight" && tied {
		return nil
	}
	name, err := tt.ggufName(t)
	if err != nil {
		return err
	}
	return b.AddTensor(name, t, transforms...)
}

// decoder is embedded by each decoder-only converter: the GGUF
// architecture it writes, the hyperparameters Check reads and the tensor
// rules they imply. Its methods are the plain ones, which an architecture
// with more to do replaces: Check reads the common hyperparameters and
// checks the checkpoint against the rules, MapTensor renames a tensor
// without transforms, and no tensors are generated.
type decoder struct {
	arch          string
	layer, global func(hp *decoderHParams) []tensorRule
	hp            decoderHParams
}

func (d *decoder) GGUFArch() string { return d.arch }

func (d *decoder) table() *tensorTable {
	return &tensorTable{arch: d.arch, layer: d.layer(&d.hp), global: d.global(&d.hp)}
}

func (d *decoder) Check(b *Builder) error { return checkDecoder(b, &d.hp, false, d.table) }

func (d *decoder) MapTensor(b *Builder, t *safetensors.Tensor) error {
	return addDecoderTensor(b, d.table(), d.hp.tied, t)
}

func (d *decoder) ExtraTensors(*Builder) error { return nil }

// sentencePieceOrBPE is convert_hf_to_gguf.py's "try
// _set_vocab_sentencepiece, else _set_vocab_gpt2".
func sentencePieceOrBPE(b *Builder, vocabSize int) error {
	v, found, err := SentencePieceVocab(b.Dir, vocabSize, b.Warn)
	if err != nil {
		return err
	}
	if found {
		return addSentencePieceVocab(b, v)
	}
	if found, err := addBPEVocab(b, vocabSize); err != nil || found {
		return err
	}
	return missingTokenizer(b.Dir)
}

// addSentencePieceVocab writes a SentencePiece vocabulary and the special
// tokens, which are checked against its size; SentencePiece has no merges.
func addSentencePieceVocab(b *Builder, v *Vocab) error {
	v.add(b)
	return addSpecialVocab(b, len(v.Tokens), false)
}

// addBPEVocab is _set_vocab_gpt2: tokenizer.json's BPE vocabulary, then the
// special tokens with the merges. found is false without tokenizer.json.
func addBPEVocab(b *Builder, vocabSize int) (found bool, err error) {
	v, found, err := b.bpeVocab(vocabSize)
	if err != nil || !found {
		return found, err
	}
	v.add(b)
	return true, addSpecialVocab(b, -1, true)
}

// addSpecialVocab is gguf-py's SpecialVocab(…).add_to_gguf with the default
// special token types; nVocab -1 skips the id range check.
func addSpecialVocab(b *Builder, nVocab int, loadMerges bool) error {
	sv, err := loadSpecialVocab(b.Dir, defaultSpecialTypes, nVocab, loadMerges, b.Warn)
	if err != nil {
		return err
	}
	return sv.add(b)
}

func missingTokenizer(dir string) error {
	return fmt.Errorf("%s: %w: no tokenizer.model or tokenizer.json", dir, ErrTokenizer)
}

func missingFile(dir, name string) error {
	return fmt.Errorf("%s: %w: %s is missing", dir, ErrTokenizer, name)
}

// Package convert turns a Hugging Face checkpoint directory (config.json,
// safetensors weights, tokenizer files) into a formats.Model that the GGUF
// writer streams to disk, reproducing llama.cpp's convert_hf_to_gguf.py
// (build b4748): the same metadata keys, value types, values and order, the
// same tensor names, order, types and bytes.
//
// Each supported architecture lives in its own file with a test twin and
// registers itself (Register) under the Hugging Face class names it
// handles: llama.go (Llama, Mistral; Llama 3's rope_freqs), mixtral.go
// (experts stacked into ffn_*_exps, written one expert at a time),
// qwen2.go, gemma.go (Gemma 1 and 2), phi3.go (fused qkv/gate_up,
// LongRoPE), and, following current llama.cpp because b4748 predates them,
// qwen3.go and gemma3.go. The shared tensor tables and config reading are in
// decoder.go. Adding an architecture is one file and one Register call.
//
// Tensors are never read here: the model's tensors are lazy views of the
// checkpoint (safetensors, or pytorch_model*.bin through formats/pytorch,
// which never runs the pickle) with Transforms (the Q/K row permutation,
// Gemma's +1 on norms) applied when the writer materialises them. Encoding
// to a block type (q8_0) needs a quantizer Codec supplied by the caller;
// this package only sets the type.
//
// # Tokenizers
//
// A SentencePiece tokenizer.model is read directly. A BPE tokenizer.json's
// pre-tokenizer is named as b4748 names it, by chkhsh: the check text is
// encoded with the tokenizer's own pipeline and the ids' SHA-256 looked up
// in b4748's table. Running a tokenizer is outside this package (it imports
// only formats), so the caller passes Options.Encoder (eval/tokenizer's
// EncodeHF); Options.Pre names the pre-tokenizer instead. Options.VocabOnly
// writes the metadata and vocabulary without tensors (--vocab-only).
//
// # Naming keys
//
// convert_hf_to_gguf.py guesses general.name, basename, finetune and
// size_label from the model card and the directory name. This package uses a
// simpler, documented rule: general.name is the input directory's base name
// in title form ("tiny-llama-hf" becomes "Tiny Llama Hf", llama.cpp's
// id_to_title), or Options.Name when set; general.size_label is the parameter
// count in gguf-py's notation ("6.8M", "1.1B"); basename and finetune are
// never written.
//
// # Deliberate differences from b4748
//
//   - --outtype auto picks from the first tensor of two or more dimensions:
//     BF16 for bf16 weights, F16 otherwise (b4748 looks at the very first
//     tensor and picks BF16 for anything but f16).
//   - rope_scaling of type "yarn" writes the yarn keys (scaling type,
//     factor, original context length) as later llama.cpp builds do; "linear"
//     is recognised under "type" or "rope_type".
//   - With tie_word_embeddings, an lm_head.weight in the checkpoint is
//     dropped (llama.cpp then reuses token_embd.weight) rather than copied.
package convert

// Package convert turns a Hugging Face checkpoint directory (config.json,
// safetensors weights, tokenizer files) into a formats.Model that the GGUF
// writer streams to disk, reproducing llama.cpp's convert_hf_to_gguf.py
// (build b4748): the same metadata keys, value types, values and order, the
// same tensor names, order, types and bytes.
//
// Each supported architecture lives in its own file and registers itself
// (Register) under the Hugging Face class names it handles; adding
// Qwen2, Gemma or Phi-3 is one more file. Tensors are never read here: the
// model's tensors are lazy safetensors views with Transforms (the Q/K row
// permutation) applied when the writer materialises them. Encoding to a block
// type (q8_0) needs a quantizer Codec supplied by the caller; this package
// only sets the type.
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

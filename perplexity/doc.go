// Package perplexity computes perplexity and KL-divergence as llama.cpp's
// llama-perplexity (build b4748) computes them, so that figures from llqt and
// llama.cpp can be compared number for number.
//
// The method, which is printed with every result because perplexities made
// with different settings are not comparable:
//
//   - The text is read with one trailing "\n" dropped and tokenized whole,
//     with BOS in front when the vocabulary adds it.
//   - The tokens are cut into non-overlapping chunks of n_ctx tokens; an
//     incomplete tail is dropped. The first token of every chunk is replaced
//     by BOS (when the vocabulary adds it) and each chunk is evaluated from an
//     empty cache.
//   - The logits at positions n_ctx/2 … n_ctx−2 score the following token, so
//     every chunk contributes n_ctx−1−n_ctx/2 tokens. The log-softmax is done
//     in double precision; PPL = exp(mean NLL) and its uncertainty is
//     sqrt((mean(nll²) − mean(nll)²)/(N−1)) · PPL.
//
// The KL-divergence base file (--kl-divergence-base) uses llama.cpp's
// "_logits_" layout byte for byte, so files are interchangeable between the
// two tools: BaseWriter writes it and BaseReader reads it, both streaming one
// chunk at a time because real files run to tens of gigabytes.
//
// The package needs from an inference engine only what Model and Context
// describe, so its statistics and file formats are tested without one.
package perplexity

package perplexity

import (
	"fmt"
	"os"

	"github.com/llqt/llqt/eval"
)

// engineModel adapts llqt's own engine to Model.
type engineModel struct{ m *eval.Model }

// FromEngine lets perplexity evaluate a model loaded with eval.Load.
// Each context gets the model's thread count for its own worker pool.
func FromEngine(m *eval.Model) Model { return engineModel{m} }

func (e engineModel) NVocab() int { return e.m.NVocab() }

func (e engineModel) NewContext(nCtx int) (Context, error) {
	return e.m.NewContext(nCtx), nil
}

// EngineText reads a text file the way llama-perplexity does (one trailing
// "\n" dropped) and tokenizes it with m's tokenizer, BOS first when the
// vocabulary adds it. It also returns the options that make chunks start with
// BOS.
func EngineText(m *eval.Model, path string) ([]int32, Options, error) {
	tok, err := m.Tokenizer()
	if err != nil {
		return nil, Options{}, fmt.Errorf("tokenizer: %w", err)
	}
	opt := Options{BOS: tok.BOS(), AddBOS: tok.AddBOS()}
	if tok.AddEOS() {
		// llama-perplexity asserts this too: an EOS after every text would
		// be scored as part of it.
		return nil, opt, fmt.Errorf("the vocabulary adds EOS to every text; llama-perplexity's method does not apply")
	}
	if path == "" {
		return nil, opt, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, opt, fmt.Errorf("text: %w", err)
	}
	toks, err := tok.Encode(PrepareText(raw), true, false)
	if err != nil {
		return nil, opt, fmt.Errorf("%s: tokenizing: %w", path, err)
	}
	return toks, opt, nil
}

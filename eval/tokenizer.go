package eval

import (
	"sync"

	"github.com/llqt/llqt/eval/tokenizer"
)

type tokenizerHolder struct {
	once sync.Once
	tok  *tokenizer.Tokenizer
	err  error
}

// Tokenizer returns the model's tokenizer, built from its metadata on first
// use.
func (m *Model) Tokenizer() (*tokenizer.Tokenizer, error) {
	m.tok.once.Do(func() {
		m.tok.tok, m.tok.err = tokenizer.FromKV(m.File.KV)
	})
	return m.tok.tok, m.tok.err
}

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/eval/tokenizer"
	"github.com/llqt/llqt/formats/gguf"
)

type tokenizeOptions struct {
	prompt, file   string
	stdin          bool
	ids            bool
	noBOS          bool
	noEscape       bool
	noParseSpecial bool
	showCount      bool
	model          string
	hf             bool
}

func newTokenizeCmd() *cobra.Command {
	var o tokenizeOptions
	cmd := &cobra.Command{
		Use: "tokenize MODEL|--hf DIR (-p TEXT | -f FILE | --stdin)",
		Example: `  # one "id -> 'piece'" line per token
  llqt tokenize model.gguf -p "Hello world"
  # llama-tokenize's form, ids only
  llqt tokenize -m model.gguf -p "Hello world" --ids
  # count the tokens of a file
  llqt tokenize model.gguf -f wiki.test.raw --ids --show-count
  # tokenize as Hugging Face does, with a tokenizer.json
  llqt tokenize --hf ./Llama-3.2-1B -p "Hello world" --ids`,
		Short: "Tokenize text with a model's vocabulary, like llama-tokenize",
		Long: `Tokenize text with the tokenizer stored in a GGUF file (a full model or a
vocabulary-only file) and print one "id -> 'piece'" line per token, or with
--ids the ids as a Python list such as [1, 15043, 3186].

BOS is added when the vocabulary asks for it (unless --no-bos), and special
tokens written in the text are recognised (unless --no-parse-special).
Escapes such as \n in -p TEXT are processed unless --no-escape; -f and --stdin
input is used verbatim.

With --hf the argument is a Hugging Face folder (or its tokenizer.json), and
the text is tokenized as Hugging Face's tokenizers library does with it:
normalizer (NFC), pre-tokenizer, BPE model, and the post-processor's tokens
(unless --no-bos).`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, _, err := modelArgs(o.model, args, 0)
			if err != nil {
				return err
			}
			text, err := o.text(cmd)
			if err != nil {
				return err
			}
			tok, err := loadTokenizer(path, o.hf)
			if err != nil {
				return err
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			if err := writeTokens(w, tok, text, o); err != nil {
				return err
			}
			return w.Flush()
		},
	}
	fl := cmd.Flags()
	addModelFlag(cmd, &o.model)
	fl.StringVarP(&o.prompt, "prompt", "p", "", "text to tokenize")
	fl.StringVarP(&o.file, "file", "f", "", "read the text from FILE, verbatim")
	fl.BoolVar(&o.stdin, "stdin", false, "read the text from standard input")
	fl.BoolVar(&o.ids, "ids", false, "print only the ids, as a list like [1, 2, 3]")
	fl.BoolVar(&o.noBOS, "no-bos", false, "never add a BOS token")
	fl.BoolVar(&o.noEscape, "no-escape", false, "do not process escapes (\\n, \\t, …) in -p TEXT")
	fl.BoolVar(&o.noParseSpecial, "no-parse-special", false, "treat special-token text as plain text")
	fl.BoolVar(&o.showCount, "show-count", false, "print the total number of tokens")
	fl.BoolVar(&o.hf, "hf", false, "tokenize with a Hugging Face tokenizer.json (MODEL is its folder or the file) as Hugging Face does")
	return cmd
}

// loadTokenizer reads a GGUF's tokenizer, or with hf a tokenizer.json.
func loadTokenizer(path string, hf bool) (*tokenizer.Tokenizer, error) {
	if hf {
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			path = filepath.Join(path, "tokenizer.json")
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return tokenizer.FromHFJSON(data, path)
	}
	f, err := gguf.OpenModel(path) // the first shard of a split model too
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tok, err := tokenizer.FromKV(f.KV)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tok, nil
}

func (o *tokenizeOptions) text(cmd *cobra.Command) (string, error) {
	given := 0
	for _, set := range []bool{cmd.Flags().Changed("prompt"), o.file != "", o.stdin} {
		if set {
			given++
		}
	}
	if given != 1 {
		return "", fmt.Errorf("give exactly one of -p TEXT, -f FILE or --stdin")
	}
	switch {
	case o.file != "":
		b, err := os.ReadFile(o.file)
		return string(b), err
	case o.stdin:
		b, err := io.ReadAll(cmd.InOrStdin())
		return string(b), err
	}
	if o.noEscape {
		return o.prompt, nil
	}
	return processEscapes(o.prompt), nil
}

// writeTokens prints the tokens of text in llama-tokenize's formats.
func writeTokens(w io.Writer, tok *tokenizer.Tokenizer, text string, o tokenizeOptions) error {
	// As llama-tokenize: specials are added exactly when BOS is.
	ids, err := tok.Encode(text, tok.AddBOS() && !o.noBOS, !o.noParseSpecial)
	if err != nil {
		return err
	}
	if o.ids {
		buf := []byte{'['}
		for i, id := range ids {
			if i > 0 {
				buf = append(buf, ", "...)
			}
			buf = strconv.AppendInt(buf, int64(id), 10)
		}
		buf = append(buf, "]\n"...)
		if _, err := w.Write(buf); err != nil {
			return err
		}
	} else {
		for _, id := range ids {
			if _, err := fmt.Fprintf(w, "%6d -> '%s'\n", id, tok.TokenToPiece(id, true)); err != nil {
				return err
			}
		}
	}
	if o.showCount {
		if _, err := fmt.Fprintf(w, "Total number of tokens: %d\n", len(ids)); err != nil {
			return err
		}
	}
	return nil
}

// processEscapes turns \n, \r, \t, \', \", \\ and \xHH into the characters
// they name, leaving other backslashes as they are (llama.cpp's
// string_process_escapes).
func processEscapes(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			out = append(out, s[i])
			continue
		}
		i++
		switch c := s[i]; c {
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case '\'', '"', '\\':
			out = append(out, c)
		case 'x':
			if i+2 < len(s) {
				if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
					out = append(out, byte(v))
					i += 2
					continue
				}
			}
			out = append(out, '\\', c)
		default:
			out = append(out, '\\', c)
		}
	}
	return string(out)
}

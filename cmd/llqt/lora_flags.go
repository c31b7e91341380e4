package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/eval/tokenizer"
	"github.com/llqt/llqt/formats/gguf"
)

// loraFlags are llama.cpp's --lora FILE and --lora-scaled FILE SCALE, in
// the order given.
type loraFlags struct {
	list []loraArg
}

type loraArg struct {
	path  string
	scale float32
}

// loraValue collects --lora FILE (scale 1).
type loraValue struct{ f *loraFlags }

func (v loraValue) String() string { return "" }
func (v loraValue) Type() string   { return "FILE" }
func (v loraValue) Set(s string) error {
	v.f.list = append(v.f.list, loraArg{s, 1})
	return nil
}

// loraScaledValue collects --lora-scaled FILE SCALE: pflag gives one value
// per flag, so the scale is the next argument, which RunE takes from args
// (see takeScales); here FILE is recorded with a pending scale.
type loraScaledValue struct{ f *loraFlags }

func (v loraScaledValue) String() string { return "" }
func (v loraScaledValue) Type() string   { return "FILE SCALE" }
func (v loraScaledValue) Set(s string) error {
	// Accept "FILE,SCALE" and "FILE:SCALE" too, for shells that pass one word.
	if i := strings.LastIndexAny(s, ",:"); i > 0 {
		if sc, err := strconv.ParseFloat(s[i+1:], 32); err == nil {
			v.f.list = append(v.f.list, loraArg{s[:i], float32(sc)})
			return nil
		}
	}
	v.f.list = append(v.f.list, loraArg{s, float32(nanPending)})
	return nil
}

const nanPending = -1e38 // marks a --lora-scaled whose SCALE is still in args

func (l *loraFlags) add(cmd *cobra.Command) {
	cmd.Flags().Var(loraValue{l}, "lora", "apply the LoRA adapter FILE (repeatable)")
	cmd.Flags().Var(loraScaledValue{l}, "lora-scaled", "apply the LoRA adapter FILE with user scale SCALE: --lora-scaled FILE SCALE (repeatable)")
}

// takeScales fills the scales of --lora-scaled flags from the positional
// arguments that follow them (pflag leaves "FILE SCALE"'s SCALE among the
// arguments) and returns the remaining arguments.
func (l *loraFlags) takeScales(args []string) ([]string, error) {
	for i := range l.list {
		if l.list[i].scale != float32(nanPending) {
			continue
		}
		if len(args) == 0 {
			return nil, fmt.Errorf("--lora-scaled %s: missing SCALE", l.list[i].path)
		}
		// The scale is the first positional argument that parses as a
		// number and is not an existing path given elsewhere.
		k := -1
		for j, a := range args {
			if _, err := strconv.ParseFloat(a, 32); err == nil {
				k = j
				break
			}
		}
		if k < 0 {
			return nil, fmt.Errorf("--lora-scaled %s: missing SCALE", l.list[i].path)
		}
		sc, _ := strconv.ParseFloat(args[k], 32)
		l.list[i].scale = float32(sc)
		args = append(append([]string(nil), args[:k]...), args[k+1:]...)
	}
	return args, nil
}

var _ pflag.Value = loraValue{}

// withLoRA gives cmd --lora and --lora-scaled and strips the SCALE values
// of --lora-scaled from the positional arguments before cmd's own Args
// check and RunE see them.
func withLoRA(cmd *cobra.Command, l *loraFlags) {
	l.add(cmd)
	args, run := cmd.Args, cmd.RunE
	var rest []string
	cmd.Args = func(c *cobra.Command, a []string) error {
		r, err := l.takeScales(a)
		if err != nil {
			return err
		}
		rest = r
		if args == nil {
			return nil
		}
		return args(c, r)
	}
	cmd.RunE = func(c *cobra.Command, _ []string) error { return run(c, rest) }
}

// loadModel loads a model for the engine and applies the adapters given
// with --lora/--lora-scaled, in order.
func loadModel(path string, opt eval.Options, l *loraFlags) (*eval.Model, error) {
	m, err := eval.Load(path, opt)
	if err != nil {
		return nil, err
	}
	if l != nil {
		for _, la := range l.list {
			a, err := gguf.OpenAdapter(la.path)
			if err != nil {
				m.Close()
				return nil, err
			}
			err = m.ApplyLoRA(a, la.scale)
			a.Close()
			if err != nil {
				m.Close()
				return nil, err
			}
		}
	}
	return m, nil
}

// loadModelTokenizer is loadModel for the commands that also tokenize
// (bench, generate, the multiple-choice evals): it returns the model's
// tokenizer too, and closes the model when it has none.
func loadModelTokenizer(path string, opt eval.Options, l *loraFlags) (*eval.Model, *tokenizer.Tokenizer, error) {
	m, err := loadModel(path, opt, l)
	if err != nil {
		return nil, nil, err
	}
	tok, err := m.Tokenizer()
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, tok, nil
}

// Command synthllama writes a synthetic random-weight Hugging Face Llama
// checkpoint (see package synth), for demos and benchmarks:
//
//	go run ./internal/synth/cmd/synthllama -out DIR -shape tiny|tinyllama-1.1b
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/llqt/llqt/formats/safetensors"
	"github.com/llqt/llqt/internal/synth"
)

func main() {
	out := flag.String("out", "", "output directory (required)")
	shape := flag.String("shape", "tiny", "model shape: "+strings.Join(shapeNames(), ", "))
	dtype := flag.String("dtype", "", "weight dtype F32, F16 or BF16 (default: the shape's)")
	shards := flag.Int("shards", 0, "number of safetensors files (default: the shape's)")
	seed := flag.Uint64("seed", 1, "random seed")
	tied := flag.Bool("tied", false, "tie lm_head to the embeddings")
	tokenizer := flag.String("tokenizer", "", "copy this folder's real Hugging Face tokenizer (tokenizer.json, tokenizer_config.json, config.json ids) instead of writing a synthetic SentencePiece one")
	flag.Parse()
	mk, ok := synth.Shapes[*shape]
	if *out == "" || !ok || flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "usage: synthllama -out DIR [-shape %s] [-dtype BF16] [-shards N] [-seed N] [-tied] [-tokenizer DIR]\n", strings.Join(shapeNames(), "|"))
		os.Exit(2)
	}
	o := mk()
	if *dtype != "" {
		o.DType = safetensors.DType(strings.ToUpper(*dtype))
	}
	if *shards > 0 {
		o.Shards = *shards
	}
	o.Seed, o.Tied, o.TokenizerDir = *seed, *tied, *tokenizer
	if err := synth.Write(*out, o); err != nil {
		fmt.Fprintln(os.Stderr, "synthllama:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s: %s-shaped Llama, %d parameters, %s\n", *out, *shape, o.Params(), o.DType)
}

func shapeNames() []string {
	var names []string
	for n := range synth.Shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

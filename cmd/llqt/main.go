// Command llqt converts Hugging Face Llama checkpoints to GGUF, quantizes
// them byte-for-byte like llama.cpp, and measures what each variant costs
// in quality and gains in size and speed. The commands here are thin: each
// parses flags and calls into the packages that do the work.
package main

import (
	"fmt"
	"os"

	"github.com/llqt/llqt/internal/cli"
)

func main() {
	root := newRootCmd()
	// llama.cpp's single-dash long flags (-ngl, -fa, -ctk, …) become
	// double-dash ones before cobra reads them.
	root.SetArgs(cli.LlamaArgs(os.Args[1:]))
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "llqt:", err)
		os.Exit(cli.Code(err))
	}
}

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
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "llqt:", err)
		os.Exit(cli.Code(err))
	}
}

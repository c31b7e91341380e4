// Command evalload loads a model with the engine (eval.Load) and makes a
// 64-token context, the way `llqt eval` and `llqt generate` start, so the
// end-to-end tests can feed the engine's loader hostile models before those
// commands exist.
//
// Usage: evalload MODEL
package main

import (
	"fmt"
	"os"

	"github.com/llqt/llqt/eval"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: evalload MODEL")
		os.Exit(2)
	}
	m, err := eval.Load(os.Args[1], eval.Options{Threads: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "llqt:", err)
		os.Exit(1)
	}
	defer m.Close()
	_ = m.NewContext(64)
	fmt.Println("loaded", m.NParams(), "parameters")
}

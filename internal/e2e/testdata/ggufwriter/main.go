// Command ggufwriter writes a GGUF file the way every llqt command that
// produces one does (cli.SignalContext, gguf.WriteFile, cli.Interrupted), but
// slowly and with no model to convert, so the end-to-end tests can check the
// shared signal and atomic-output machinery before, and independently of,
// the real commands.
//
// Usage: ggufwriter OUT TENSORS DELAY_MS
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/cli"
)

const elems = 1 << 18 // 1 MiB of F32 per tensor

type slowSource struct {
	i     int
	delay time.Duration
}

func (s slowSource) Type() ggml.Type { return ggml.TypeF32 }
func (s slowSource) ReadRaw() ([]byte, error) {
	time.Sleep(s.delay)
	b := make([]byte, 4*elems)
	for j := range b {
		b[j] = byte(s.i + j)
	}
	return b, nil
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: ggufwriter OUT TENSORS DELAY_MS")
		os.Exit(2)
	}
	n, _ := strconv.Atoi(os.Args[2])
	ms, _ := strconv.Atoi(os.Args[3])
	m := &formats.Model{Arch: "llama", KV: formats.KVs{{Key: "general.architecture", Value: "llama"}}}
	for i := 0; i < n; i++ {
		m.Tensors = append(m.Tensors, &formats.Tensor{
			Name: fmt.Sprintf("t%d", i), Shape: []uint64{elems}, Type: ggml.TypeF32,
			Source: slowSource{i: i, delay: time.Duration(ms) * time.Millisecond},
		})
	}
	ctx, stop := cli.SignalContext(context.Background())
	err := gguf.WriteFile(ctx, os.Args[1], m, gguf.WriteOptions{Threads: 2})
	err = cli.Interrupted(err, stop())
	if err != nil {
		fmt.Fprintln(os.Stderr, "ggufwriter:", err)
		os.Exit(cli.Code(err))
	}
}

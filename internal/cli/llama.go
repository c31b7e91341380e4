package cli

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/pflag"
)

// llamaSingleDash maps llama.cpp's single-dash flags of more than one
// letter, which pflag would read as a cluster of one-letter flags (-ngl as
// -n gl, -fa as -f a), to the long flags llqt registers for them.
var llamaSingleDash = map[string]string{
	"-ngl":  "--n-gpu-layers",
	"-ngld": "--n-gpu-layers-draft",
	"-fa":   "--flash-attn",
	"-ctk":  "--cache-type-k",
	"-ctv":  "--cache-type-v",
	"-ub":   "--ubatch-size",
	"-pg":   "--pg",
	"-nkvo": "--no-kv-offload",
	"-mmp":  "--mmap",
	"-sm":   "--split-mode",
	"-mg":   "--main-gpu",
	"-ts":   "--tensor-split",
	"-dev":  "--device",
	"-tb":   "--threads-batch",
	"-cb":   "--cont-batching",
	"-np":   "--parallel",
}

// LlamaArgs rewrites llama.cpp's single-dash long flags in args (the
// command line after the program name) to llqt's double-dash names, so that
// a script written for llama.cpp's tools runs with `llqt COMMAND` put in
// their place. Only whole arguments that equal a known flag are rewritten,
// and nothing after "--".
func LlamaArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "--" {
			copy(out[i:], args[i:])
			break
		}
		if long, ok := llamaSingleDash[a]; ok {
			a = long
		}
		out[i] = a
	}
	return out
}

// cpuOnlyFlags are llama.cpp's flags that mean nothing to llqt's CPU
// engine; a command accepts them and prints a note that they are ignored.
var cpuOnlyFlags = []struct{ name, what string }{
	{"n-gpu-layers", "there is no GPU offload"},
	{"flash-attn", "attention is computed the same way either way"},
	{"no-mmap", "the model is always memory-mapped"},
	{"mlock", "the model's pages are never locked"},
	{"no-kv-offload", "there is no GPU offload"},
	{"split-mode", "there is no GPU"},
	{"main-gpu", "there is no GPU"},
	{"tensor-split", "there is no GPU"},
	{"device", "there is no GPU"},
	{"mmap", "the model is always memory-mapped"},
}

// AddCPUOnlyFlags registers llama.cpp's GPU and memory flags (-ngl, -fa,
// --no-mmap, …) as hidden flags that IgnoredNotes reports. valued makes
// -fa take a value as llama-bench's does (-fa 0,1); elsewhere it is a
// switch as in llama-cli and llama-perplexity.
func AddCPUOnlyFlags(fs *pflag.FlagSet, valued bool) {
	for _, f := range cpuOnlyFlags {
		var fl *pflag.Flag
		switch f.name {
		case "flash-attn", "no-mmap", "mlock", "no-kv-offload":
			if f.name == "flash-attn" && valued {
				fs.String(f.name, "", "ignored: "+f.what)
			} else {
				fs.Bool(f.name, false, "ignored: "+f.what)
			}
		default:
			fs.String(f.name, "", "ignored: "+f.what)
		}
		fl = fs.Lookup(f.name)
		fl.Hidden = true
	}
	if fs.Lookup("gpu-layers") == nil {
		// llama.cpp's other spelling of -ngl.
		fs.String("gpu-layers", "", "ignored: there is no GPU offload")
		fs.Lookup("gpu-layers").Hidden = true
	}
}

// IgnoredNotes writes one note per llama.cpp GPU or memory flag given in fs.
func IgnoredNotes(w io.Writer, fs *pflag.FlagSet) {
	for _, f := range cpuOnlyFlags {
		if fl := fs.Lookup(f.name); fl != nil && fl.Changed {
			fmt.Fprintf(w, "note: %s ignored: llqt runs on the CPU and %s\n", spelled(f.name), f.what)
		}
	}
	if fl := fs.Lookup("gpu-layers"); fl != nil && fl.Changed {
		fmt.Fprintf(w, "note: --gpu-layers ignored: llqt runs on the CPU and there is no GPU offload\n")
	}
}

// spelled names a flag as a llama.cpp user typed it: -ngl rather than
// --n-gpu-layers.
func spelled(long string) string {
	for short, l := range llamaSingleDash {
		if l == "--"+long {
			return short + "/--" + long
		}
	}
	return "--" + long
}

// Threads resolves a -t value: 0 means one thread per CPU (as a value of 0
// or less does in llama.cpp); a negative count is refused, and a count
// above the CPUs is allowed with a warning on w, since it only adds
// overhead.
func Threads(n int, w io.Writer) (int, error) {
	cpus := runtime.NumCPU()
	switch {
	case n < 0:
		return 0, fmt.Errorf("-t %d: the thread count must be 0 (one per CPU) or more", n)
	case n == 0:
		return cpus, nil
	case n > MaxThreads:
		return 0, fmt.Errorf("-t %d: at most %d threads", n, MaxThreads)
	case n > cpus:
		fmt.Fprintf(w, "warning: -t %d is more threads than the %d CPUs; the extra threads only add overhead\n", n, cpus)
	}
	return n, nil
}

// MaxThreads bounds -t.
const MaxThreads = 1024

// ThreadsUsage is -t's help text.
const ThreadsUsage = "worker threads (0: one per CPU)"

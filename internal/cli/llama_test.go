package cli

import (
	"bytes"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestLlamaArgs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"bench -m x.gguf -ngl 99 -fa 1", "bench -m x.gguf --n-gpu-layers 99 --flash-attn 1"},
		{"eval perplexity -m x -ctk f32 -ctv f32 -ub 64", "eval perplexity -m x --cache-type-k f32 --cache-type-v f32 --ubatch-size 64"},
		{"bench x -pg 512,128 -mmp 0 -nkvo 1", "bench x --pg 512,128 --mmap 0 --no-kv-offload 1"},
		{"generate x -p -fa", "generate x -p --flash-attn"}, // whole arguments only; a prompt "-fa" needs -p=-fa
		{"generate x -p=-fa -n 3", "generate x -p=-fa -n 3"},
		{"generate x -f a.txt -n 3 -t 2", "generate x -f a.txt -n 3 -t 2"}, // one-letter flags stay
		{"quantize a b Q4_0 -- -ngl", "quantize a b Q4_0 -- -ngl"},         // nothing after --
		{"bench x --n-gpu-layers 9 -ngll", "bench x --n-gpu-layers 9 -ngll"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got := strings.Join(LlamaArgs(strings.Fields(tc.in)), " ")
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestCPUOnlyFlagsAndNotes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		valued bool
		args   []string
		notes  []string
	}{
		{"none", false, nil, nil},
		{"switches", false, []string{"--n-gpu-layers", "99", "--flash-attn", "--no-mmap"}, []string{"-ngl/--n-gpu-layers ignored", "-fa/--flash-attn ignored", "--no-mmap ignored"}},
		{"bench values", true, []string{"--flash-attn", "1", "--mmap", "0", "--gpu-layers", "5"}, []string{"-fa/--flash-attn ignored", "-mmp/--mmap ignored", "--gpu-layers ignored"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
			AddCPUOnlyFlags(fs, tc.valued)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if fs.NArg() != 0 {
				t.Errorf("left %q as arguments", fs.Args())
			}
			var b bytes.Buffer
			IgnoredNotes(&b, fs)
			lines := strings.FieldsFunc(b.String(), func(r rune) bool { return r == '\n' })
			if len(lines) != len(tc.notes) {
				t.Fatalf("notes %q, want %d", lines, len(tc.notes))
			}
			for i, want := range tc.notes {
				if !strings.Contains(lines[i], want) {
					t.Errorf("note %q lacks %q", lines[i], want)
				}
			}
		})
	}
}

func TestThreads(t *testing.T) {
	cpus := runtime.NumCPU()
	for _, tc := range []struct {
		in, want int
		warn     bool
		wantErr  string
	}{
		{0, cpus, false, ""},
		{1, 1, false, ""},
		{cpus, cpus, false, ""},
		{cpus + 1, cpus + 1, true, ""},
		{-3, 0, false, "must be 0 (one per CPU) or more"},
		{MaxThreads + 1, 0, false, "at most"},
	} {
		var b bytes.Buffer
		got, err := Threads(tc.in, &b)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Threads(%d): err %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want || (b.Len() > 0) != tc.warn {
			t.Errorf("Threads(%d) = %d, %v, warning %q; want %d, warning %v", tc.in, got, err, b.String(), tc.want, tc.warn)
		}
	}
	if !slices.Contains(strings.Fields(ThreadsUsage), "(0:") {
		t.Errorf("ThreadsUsage %q does not say what 0 means", ThreadsUsage)
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/internal/cli"
	"github.com/llqt/llqt/internal/cpuinfo"
	"github.com/llqt/llqt/kernels"
)

type benchOptions struct {
	nPrompt []int
	nGen    []int
	pg      []string
	threads []int
	models  []string
	reps    int
	json    bool
	md      bool
	output  string
	kv      kvFlags
	kernels string
	lora    loraFlags
}

func newBenchCmd() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench MODEL [-p 512] [-n 128] [-r 5]",
		Short: "Measure prompt processing and generation speed, like llama-bench",
		Example: `  # llama-bench's default tests: pp512 and tg128, 5 repetitions
  llqt bench model.gguf
  # llama-bench's form: several models, lists of sizes and thread counts
  llqt bench -m q4_0.gguf -m q8_0.gguf -p 128,512 -n 32 -t 4,8 -r 3
  # prompt and generation together (pp512+tg128), as JSON lines
  llqt bench model.gguf -pg 512,128 -p 0 -n 0 -o jsonl`,
		Long: `Run llama-bench's tests on the built-in engine: ppN evaluates N random tokens
(BOS first) in one batch, tgN generates N tokens one at a time, and -pg P,N
does both (ppP+tgN). Each test has one warm-up run, then -r repetitions with
the KV cache cleared before each; the rate is tokens / seconds per
repetition, shown as mean ± sample standard deviation. GB/s is the effective
weight bandwidth: the weight bytes a single-token step reads, times tokens
per second.

Models come as arguments or as -m (repeatable); -p, -n and -t take comma
lists, and every combination runs, as in llama-bench.

Output (-o) is llama-bench's markdown table (md, the default), its JSON
array (json, also --json), one JSON record per line (jsonl), or CSV with a
header row (csv). Records have llama-bench's fields (n_prompt, n_gen,
n_threads, model_size, model_n_params, avg_ns, stddev_ns, avg_ts, stddev_ts,
samples_ns, samples_ts, …).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.json && o.md {
				return fmt.Errorf("--json and --md are exclusive")
			}
			switch {
			case o.json && cmd.Flags().Changed("output") && o.output != "json":
				return fmt.Errorf("--json and -o %s disagree: give one", o.output)
			case o.json:
				o.output = "json"
			case o.md && cmd.Flags().Changed("output") && o.output != "md":
				return fmt.Errorf("--md and -o %s disagree: give one", o.output)
			}
			switch o.output {
			case "md", "json", "jsonl", "csv":
			default:
				return fmt.Errorf("-o %q: want md, json, jsonl or csv", o.output)
			}
			models := append(append([]string(nil), args...), o.models...)
			if len(models) == 0 {
				return fmt.Errorf("no model: give MODEL as an argument or -m MODEL (repeatable)")
			}
			for i, t := range o.threads {
				n, err := cli.Threads(t, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				o.threads[i] = n
			}
			return cli.RunCancellable(cmd.Context(), func(ctx context.Context) error {
				return runBench(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), models, o)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&o.models, "model", "m", nil, "model file (repeatable; in addition to MODEL arguments)")
	fl.IntSliceVarP(&o.nPrompt, "n-prompt", "p", []int{512}, "prompt sizes to test, comma-separated (0 to skip)")
	fl.IntSliceVarP(&o.nGen, "n-gen", "n", []int{128}, "generation lengths to test, comma-separated (0 to skip)")
	fl.StringArrayVar(&o.pg, "pg", nil, "-pg P,N: a prompt of P tokens then N generated, timed together (repeatable)")
	fl.IntVarP(&o.reps, "repetitions", "r", 5, "repetitions of each test")
	fl.BoolVar(&o.json, "json", false, "print llama-bench's JSON records (same as -o json)")
	fl.BoolVar(&o.md, "md", false, "print llama-bench's markdown table (the default)")
	fl.StringVarP(&o.output, "output", "o", "md", "output format as llama-bench's -o: md, json, jsonl or csv")
	addKVFlags(cmd, &o.kv)
	addKernelsFlag(cmd, &o.kernels)
	cli.AddCPUOnlyFlags(fl, true)
	fl.IntSliceVarP(&o.threads, "threads", "t", []int{runtime.NumCPU()}, cli.ThreadsUsage+", comma-separated")
	withLoRA(cmd, &o.lora)
	return cmd
}

// benchResult is one test's record, with llama-bench's JSON field names.
type benchResult struct {
	BuildCommit  string    `json:"build_commit"`
	BuildNumber  int       `json:"build_number"`
	CPUInfo      string    `json:"cpu_info"`
	GPUInfo      string    `json:"gpu_info"`
	Backends     string    `json:"backends"`
	ModelFile    string    `json:"model_filename"`
	ModelType    string    `json:"model_type"`
	ModelSize    uint64    `json:"model_size"`
	ModelNParams uint64    `json:"model_n_params"`
	NBatch       int       `json:"n_batch"`
	NUBatch      int       `json:"n_ubatch"`
	NThreads     int       `json:"n_threads"`
	TypeK        string    `json:"type_k"`
	TypeV        string    `json:"type_v"`
	FlashAttn    bool      `json:"flash_attn"`
	UseMmap      bool      `json:"use_mmap"`
	NPrompt      int       `json:"n_prompt"`
	NGen         int       `json:"n_gen"`
	TestTime     string    `json:"test_time"`
	AvgNs        uint64    `json:"avg_ns"`
	StddevNs     uint64    `json:"stddev_ns"`
	AvgTs        float64   `json:"avg_ts"`
	StddevTs     float64   `json:"stddev_ts"`
	SamplesNs    []uint64  `json:"samples_ns"`
	SamplesTs    []float64 `json:"samples_ts"`
	// EffectiveGBs is llqt's addition: bytes per token × avg_ts.
	EffectiveGBs float64 `json:"effective_gbps"`
	// Kernels is llqt's addition: the kernel set that ran (kernels.Active).
	Kernels string `json:"kernels"`
}

func (r *benchResult) testName() string {
	switch {
	case r.NGen == 0:
		return fmt.Sprintf("pp%d", r.NPrompt)
	case r.NPrompt == 0:
		return fmt.Sprintf("tg%d", r.NGen)
	}
	return fmt.Sprintf("pp%d+tg%d", r.NPrompt, r.NGen)
}

// benchTests are the (n_prompt, n_gen) pairs to run, in llama-bench's
// order: the pp tests, the tg tests, then the -pg pairs.
func benchTests(o benchOptions) ([][2]int, error) {
	var tests [][2]int
	for _, p := range o.nPrompt {
		if p < 0 {
			return nil, fmt.Errorf("-p %d: a prompt size is 0 (skip) or more", p)
		}
		if p > 0 {
			tests = append(tests, [2]int{p, 0})
		}
	}
	for _, n := range o.nGen {
		if n < 0 {
			return nil, fmt.Errorf("-n %d: a generation length is 0 (skip) or more", n)
		}
		if n > 0 {
			tests = append(tests, [2]int{0, n})
		}
	}
	for _, s := range o.pg {
		a, b, ok := strings.Cut(s, ",")
		p, err1 := strconv.Atoi(strings.TrimSpace(a))
		n, err2 := strconv.Atoi(strings.TrimSpace(b))
		if !ok || err1 != nil || err2 != nil || p < 0 || n < 0 || p+n == 0 {
			return nil, fmt.Errorf("-pg %q: want PROMPT,GEN such as 512,128", s)
		}
		tests = append(tests, [2]int{p, n})
	}
	if len(tests) == 0 {
		return nil, fmt.Errorf("nothing to run: give -p, -n or -pg above 0")
	}
	return tests, nil
}

func runBench(ctx context.Context, out, errw io.Writer, models []string, o benchOptions) error {
	if o.reps < 1 {
		return fmt.Errorf("-r %d: the repetitions must be at least 1", o.reps)
	}
	tests, err := benchTests(o)
	if err != nil {
		return err
	}
	if err := useKernels(o.kernels); err != nil {
		return err
	}
	kvF32, err := o.kv.kvF32()
	if err != nil {
		return err
	}
	for _, path := range models {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("-m: %w", err)
		}
	}
	var results []benchResult
	switch o.output {
	case "md":
		printMarkdownHeader(out)
	case "csv":
		printCSVHeader(out)
	}
	for _, path := range models {
		for _, threads := range o.threads {
			rs, err := benchModel(ctx, out, errw, path, threads, kvF32, tests, o)
			if err != nil {
				return err
			}
			results = append(results, rs...)
		}
	}
	switch o.output {
	case "json":
		return cli.JSON(out, results)
	case "md":
		fmt.Fprintf(out, "\nbuild: llqt %s (%s)\ncpu: %s, kernels: %s\n", version, buildCommit(), cpuinfo.Model(), kernels.Active())
	}
	return nil
}

// benchModel runs every test on one model with one thread count, printing
// md, jsonl and csv records as they finish.
func benchModel(ctx context.Context, out, errw io.Writer, path string, threads int, kvF32 bool, tests [][2]int, o benchOptions) ([]benchResult, error) {
	m, tok, err := loadModelTokenizer(path, eval.Options{Threads: threads, KVF32: kvF32}, &o.lora)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	bos := int32(-1)
	if tok.AddBOS() {
		bos = tok.BOS()
	}
	base := benchResult{
		BuildCommit: buildCommit(), CPUInfo: cpuinfo.Model(), Backends: "CPU", Kernels: kernels.Active(),
		ModelFile: path, ModelType: modelDesc(m), ModelSize: m.SizeBytes(), ModelNParams: m.NParams(),
		NBatch: 2048, NUBatch: 512, NThreads: m.Threads(),
		TypeK: strings.ToLower(m.KVType().String()), TypeV: strings.ToLower(m.KVType().String()), UseMmap: true,
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var results []benchResult
	for ti, tc := range tests {
		r := base
		r.NPrompt, r.NGen = tc[0], tc[1]
		r.TestTime = time.Now().UTC().Format("2006-01-02T15:04:05Z")
		if w := ctxTrainWarning(r.NPrompt+r.NGen, m.Hparams.NCtxTrain); w != "" {
			fmt.Fprintf(errw, "warning: %s: %s\n", r.testName(), strings.Replace(w, fmt.Sprintf("-c %d", r.NPrompt+r.NGen), fmt.Sprintf("%d tokens", r.NPrompt+r.NGen), 1))
		}
		c := m.NewContext(r.NPrompt + r.NGen)
		fmt.Fprintf(errw, "llqt bench: test %d/%d %s: warm-up\n", ti+1, len(tests), r.testName())
		if err := eval.BenchRun(ctx, c, r.NPrompt, min(r.NGen, 1), bos, rng); err != nil {
			c.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for rep := range o.reps {
			fmt.Fprintf(errw, "llqt bench: test %d/%d %s: repetition %d/%d\n", ti+1, len(tests), r.testName(), rep+1, o.reps)
			c.Reset()
			t0 := time.Now()
			if err := eval.BenchRun(ctx, c, r.NPrompt, r.NGen, bos, rng); err != nil {
				c.Close()
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			ns := uint64(max(time.Since(t0).Nanoseconds(), 1))
			r.SamplesNs = append(r.SamplesNs, ns)
			r.SamplesTs = append(r.SamplesTs, 1e9*float64(r.NPrompt+r.NGen)/float64(ns))
		}
		c.Close()
		r.AvgNs, r.StddevNs = meanSD64(r.SamplesNs)
		r.AvgTs, r.StddevTs = meanSD(r.SamplesTs)
		r.EffectiveGBs = float64(m.BytesPerToken()) * r.AvgTs / 1e9
		results = append(results, r)
		switch o.output {
		case "md":
			printMarkdownRow(out, &r)
		case "jsonl":
			b, err := json.Marshal(&r)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(out, "%s\n", b)
		case "csv":
			printCSVRow(out, &r)
		}
	}
	return results, nil
}

// csvFields are the scalar fields of benchResult (llama-bench's CSV
// columns), found through their JSON names.
func csvFields() []int {
	var idx []int
	t := reflect.TypeOf(benchResult{})
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Slice || f.Tag.Get("json") == "" {
			continue
		}
		idx = append(idx, i)
	}
	return idx
}

func printCSVHeader(w io.Writer) {
	t := reflect.TypeOf(benchResult{})
	var names []string
	for _, i := range csvFields() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names = append(names, name)
	}
	fmt.Fprintln(w, strings.Join(names, ","))
}

// printCSVRow writes r's values quoted as llama-bench's CSV printer does.
func printCSVRow(w io.Writer, r *benchResult) {
	v := reflect.ValueOf(r).Elem()
	var vals []string
	for _, i := range csvFields() {
		s := fmt.Sprint(v.Field(i).Interface())
		vals = append(vals, `"`+strings.ReplaceAll(s, `"`, `""`)+`"`)
	}
	fmt.Fprintln(w, strings.Join(vals, ","))
}

// meanSD64 is llama-bench's avg and stdev over nanosecond samples (integer
// mean, sample standard deviation).
func meanSD64(v []uint64) (uint64, uint64) {
	f := make([]float64, len(v))
	var sum uint64
	for i, x := range v {
		f[i] = float64(x)
		sum += x
	}
	_, sd := meanSD(f)
	return sum / uint64(len(v)), uint64(sd)
}

func meanSD(v []float64) (float64, float64) {
	if len(v) == 0 {
		return 0, 0
	}
	var sum, sq float64
	for _, x := range v {
		sum += x
		sq += x * x
	}
	n := float64(len(v))
	mean := sum / n
	if len(v) < 2 {
		return mean, 0
	}
	return mean, math.Sqrt(max(0, sq/(n-1)-mean*mean*n/(n-1)))
}

// benchColumns are llama-bench's CPU columns (a negative width is
// left-aligned), plus GB/s.
var benchColumns = []struct {
	name  string
	width int
}{
	{"model", -30}, {"size", 10}, {"params", 10}, {"backend", -10}, {"threads", 7},
	{"test", 13}, {"t/s", 20}, {"GB/s", 8},
}

func printMarkdownHeader(w io.Writer) {
	var b strings.Builder
	b.WriteString("|")
	for _, c := range benchColumns {
		fmt.Fprintf(&b, " %*s |", c.width, c.name)
	}
	b.WriteString("\n|")
	for _, c := range benchColumns {
		colon := "-"
		if c.width > 0 {
			colon = ":"
		}
		fmt.Fprintf(&b, " %s%s |", strings.Repeat("-", abs(c.width)-1), colon)
	}
	b.WriteString("\n")
	io.WriteString(w, b.String())
}

func printMarkdownRow(w io.Writer, r *benchResult) {
	size := fmt.Sprintf("%.2f MiB", float64(r.ModelSize)/1024/1024)
	if r.ModelSize >= 1<<30 {
		size = fmt.Sprintf("%.2f GiB", float64(r.ModelSize)/(1<<30))
	}
	params := fmt.Sprintf("%.2f M", float64(r.ModelNParams)/1e6)
	if r.ModelNParams >= 1e9 {
		params = fmt.Sprintf("%.2f B", float64(r.ModelNParams)/1e9)
	}
	values := []string{r.ModelType, size, params, r.Backends, fmt.Sprint(r.NThreads), r.testName(),
		fmt.Sprintf("%.2f ± %.2f", r.AvgTs, r.StddevTs), fmt.Sprintf("%.2f", r.EffectiveGBs)}
	var b strings.Builder
	b.WriteString("|")
	for i, c := range benchColumns {
		width := c.width
		if c.name == "t/s" {
			width++ // "±" is two bytes, as llama-bench accounts for
		}
		fmt.Fprintf(&b, " %*s |", width, values[i])
	}
	b.WriteString("\n")
	io.WriteString(w, b.String())
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// modelDesc is llama.cpp's model description: architecture, size class and
// file type, e.g. "llama 1B Q4_K - Medium".
func modelDesc(m *eval.Model) string {
	h := m.Hparams
	size := "?B"
	switch h.NLayer {
	case 16, 22:
		size = "1B"
	case 26, 28:
		size = "3B"
	case 32:
		size = "8B"
		if h.NVocab < 40000 {
			size = "7B"
		}
	case 36:
		size = "8B"
	case 40:
		size = "13B"
	case 48:
		size = "34B"
	case 60:
		size = "30B"
	case 80:
		size = "70B"
		if h.NHead == h.NHeadKV {
			size = "65B"
		}
	}
	ftype := "unknown, may not work"
	if v, ok := m.File.KV.Uint("general.file_type"); ok {
		if name, known := fileTypeNames[v]; known {
			ftype = name
		}
	}
	return h.Arch + " " + size + " " + ftype
}

// fileTypeNames are llama.cpp's names of general.file_type values.
var fileTypeNames = map[uint64]string{
	0: "all F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
	10: "Q2_K - Medium", 11: "Q3_K - Small", 12: "Q3_K - Medium", 13: "Q3_K - Large",
	14: "Q4_K - Small", 15: "Q4_K - Medium", 16: "Q5_K - Small", 17: "Q5_K - Medium", 18: "Q6_K",
	19: "IQ2_XXS - 2.0625 bpw", 20: "IQ2_XS - 2.3125 bpw", 21: "Q2_K - Small", 22: "IQ3_XS - 3.3 bpw",
	23: "IQ3_XXS - 3.0625 bpw", 24: "IQ1_S - 1.5625 bpw", 25: "IQ4_NL - 4.5 bpw", 26: "IQ3_S - 3.4375 bpw",
	27: "IQ3_S mix - 3.66 bpw", 28: "IQ2_S - 2.5 bpw", 29: "IQ2_M - 2.7 bpw", 30: "IQ4_XS - 4.25 bpw",
	31: "IQ1_M - 1.75 bpw", 32: "BF16", 36: "TQ1_0 - 1.69 bpw ternary", 37: "TQ2_0 - 2.06 bpw ternary",
}

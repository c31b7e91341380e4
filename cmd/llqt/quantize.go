package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/llqt/llqt/convert"
	"github.com/llqt/llqt/eval/tokenizer"
	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/cli"
	"github.com/llqt/llqt/internal/target"
	"github.com/llqt/llqt/quant"
)

// shortPresets get a flag of their own (--q4_k_m, --q8_0, …).
var shortPresets = []string{"Q2_K", "Q2_K_S", "Q3_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K", "Q4_K_S", "Q4_K_M",
	"Q5_K", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "IQ4_XS",
	"F16", "BF16", "F32", "COPY"}

type quantizeFlags struct {
	typeName          string
	short             map[string]*bool
	pure              bool
	outputTensorType  string
	tokenEmbdType     string
	leaveOutputTensor bool
	tensorTypes       []string
	allowRequantize   bool
	dryRun            bool
	force             bool
	threads           int
	json              bool
	convertOutType    string
	imatrix           string
	includeWeights    []string
	excludeWeights    []string
	overrideKV        []string
	target            targetFlags
	keepSplit         bool
	split             splitFlags
}

func newQuantizeCmd() *cobra.Command {
	f := &quantizeFlags{short: map[string]*bool{}}
	cmd := &cobra.Command{
		Use:   "quantize IN [OUT] TYPE [NTHREADS]",
		Short: "Quantize a GGUF model (or a Hugging Face checkpoint) byte-for-byte like llama-quantize",
		Example: `  # llama-quantize's form: IN OUT TYPE [NTHREADS]
  llqt quantize model-f32.gguf model-Q4_K_M.gguf Q4_K_M
  llqt quantize model-f32.gguf model-Q4_K_M.gguf Q4_K_M 8
  # without OUT: writes ggml-model-Q8_0.gguf beside the input, as llama-quantize does
  llqt quantize model-f32.gguf Q8_0
  # straight from a Hugging Face checkpoint directory
  llqt quantize ./Llama-3.2-1B model-Q4_K_M.gguf --type q4_k_m
  # see what each tensor would become, writing nothing
  llqt quantize model-f32.gguf out.gguf Q4_K_M --dry-run`,
		Long: `Quantize IN (a GGUF file, or a Hugging Face checkpoint directory converted on the
fly) to OUT with one of llama-quantize's types, applying the same per-tensor mix
rules, so the output is byte-identical to llama.cpp b4748's llama-quantize.

A Hugging Face directory is converted as by "llqt convert --outtype f32" (see
--convert-outtype) and quantized in the same pass, without an intermediate file.

The arguments take llama-quantize's form: IN [OUT] TYPE [NTHREADS]. Without
OUT the output is ggml-model-TYPE.gguf in IN's folder; NTHREADS is the same as
-t. The type may also be given as --type Q4_K_M or as a flag of its own
(--q4_k_m, --q8_0, …). Names are case-insensitive, and llama-quantize's
numbers (15 for Q4_K_M) work too; Q3_K, Q4_K and Q5_K mean the _M mixes. The
output is written atomically; the input is never modified.

--include-weights and --exclude-weights (with --imatrix) keep or drop the
importance-matrix entries of tensors whose names contain the given text.
--override-kv KEY=TYPE:VALUE (TYPE int, float, bool or str) sets metadata in
the output, as llama-quantize does.

Types: ` + presetList(),
		Args: cobra.RangeArgs(1, 4),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.RunCancellable(cmd.Context(), func(ctx context.Context) error {
				return runQuantize(ctx, cmd, f, args)
			})
		},
	}
	fl := cmd.Flags()
	// Type names in flags are case-insensitive, as on the command line of
	// llama-quantize: --Q4_K_M is --q4_k_m.
	fl.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ToLower(name))
	})
	fl.StringVar(&f.typeName, "type", "", "quantization type (preset), e.g. Q4_K_M")
	for _, name := range shortPresets {
		p, err := quant.ParsePreset(name)
		if err != nil {
			panic(err) // the table above is fixed at build time
		}
		usage := "same as --type " + p.Name
		if p.Name != name {
			usage += " (alias)"
		}
		f.short[name] = fl.Bool(strings.ToLower(name), false, usage)
	}
	fl.BoolVar(&f.pure, "pure", false, "give every quantizable tensor the type's default block format (no mix rules)")
	fl.StringVar(&f.outputTensorType, "output-tensor-type", "", "ggml type for output.weight")
	fl.StringVar(&f.tokenEmbdType, "token-embedding-type", "", "ggml type for token_embd.weight")
	fl.BoolVar(&f.leaveOutputTensor, "leave-output-tensor", false, "keep output.weight as it is in the input")
	fl.StringArrayVar(&f.tensorTypes, "tensor-type", nil, "REGEX=TYPE: force the type of matching tensors (repeatable; the last match wins)")
	fl.BoolVar(&f.allowRequantize, "allow-requantize", false, "allow quantizing tensors that are already quantized (loses quality)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the per-tensor plan and the resulting size; write nothing")
	fl.BoolVar(&f.force, "force", false, "overwrite OUT if it exists")
	fl.BoolVar(&f.json, "json", false, "print the plan or summary as JSON")
	fl.StringVar(&f.imatrix, "imatrix", "", "importance matrix file from llama-imatrix (needed by Q2_K_S)")
	fl.StringArrayVar(&f.includeWeights, "include-weights", nil, "use the importance matrix only for tensors whose name contains this (repeatable)")
	fl.StringArrayVar(&f.excludeWeights, "exclude-weights", nil, "do not use the importance matrix for tensors whose name contains this (repeatable)")
	fl.StringArrayVar(&f.overrideKV, "override-kv", nil, "KEY=TYPE:VALUE: set metadata in the output; TYPE is int, float, bool or str (repeatable)")
	fl.StringVar(&f.convertOutType, "convert-outtype", "f32", "when IN is a Hugging Face directory: the type the converter "+
		"stores matrices as before quantizing ("+strings.Join(convert.OutTypes, ", ")+"); f32 is lossless")
	addTargetFlags(cmd, &f.target)
	addThreadsFlag(cmd, &f.threads)
	addQuantizeSplitFlags(cmd, f)
	return cmd
}

func presetList() string {
	var names []string
	for _, p := range quant.Presets() {
		if p.Supported() {
			names = append(names, p.Name)
		}
	}
	return strings.Join(names, ", ")
}

// givenTypes lists the type names given: --type, the short flags and the
// positional TYPE ("" when absent), in that order.
func (f *quantizeFlags) givenTypes(positional string) []string {
	var given []string
	if f.typeName != "" {
		given = append(given, f.typeName)
	}
	for _, name := range shortPresets {
		if *f.short[name] {
			given = append(given, name)
		}
	}
	if positional != "" {
		given = append(given, positional)
	}
	return given
}

// preset resolves the type from --type, the short flags or the third
// argument; exactly one must be given.
func (f *quantizeFlags) preset(positional string) (quant.Preset, error) {
	given := f.givenTypes(positional)
	switch len(given) {
	case 0:
		return quant.Preset{}, errors.New("no quantization type: give one as IN OUT TYPE, --type Q4_K_M or --q4_k_m")
	case 1:
	default:
		return quant.Preset{}, fmt.Errorf("more than one quantization type given: %s", strings.Join(given, ", "))
	}
	p, err := quant.ParsePreset(given[0])
	if err != nil {
		return p, err
	}
	if !p.Supported() {
		return p, fmt.Errorf("%s needs block formats llqt does not implement yet (supported: %s)", p.Name, presetList())
	}
	return p, nil
}

func (f *quantizeFlags) options(p quant.Preset, ctx context.Context) (quant.Options, error) {
	opts := quant.Options{
		Preset:            p,
		Pure:              f.pure,
		LeaveOutputTensor: f.leaveOutputTensor,
		AllowRequantize:   f.allowRequantize,
		Threads:           f.threads,
		Context:           ctx,
	}
	for _, s := range []struct {
		flag, val string
		dst       **ggml.Type
	}{{"--output-tensor-type", f.outputTensorType, &opts.OutputTensorType}, {"--token-embedding-type", f.tokenEmbdType, &opts.TokenEmbeddingType}} {
		if s.val == "" {
			continue
		}
		t, err := ggml.ParseType(s.val)
		if err != nil {
			return opts, fmt.Errorf("%s: %w", s.flag, err)
		}
		*s.dst = &t
	}
	if f.imatrix == "" && (len(f.includeWeights) > 0 || len(f.excludeWeights) > 0) {
		return opts, errors.New("--include-weights and --exclude-weights choose importance-matrix entries: give --imatrix FILE too")
	}
	if len(f.includeWeights) > 0 && len(f.excludeWeights) > 0 {
		return opts, errors.New("--include-weights and --exclude-weights cannot be used together (as in llama-quantize)")
	}
	for _, s := range f.overrideKV {
		kv, err := parseOverrideKV(s)
		if err != nil {
			return opts, err
		}
		opts.KVOverrides = append(opts.KVOverrides, kv)
	}
	if f.imatrix != "" {
		im, err := quant.ReadImatrix(f.imatrix)
		if err != nil {
			return opts, err
		}
		weights := filterImatrix(im.Weights, f.includeWeights, f.excludeWeights)
		if len(weights) == 0 {
			return opts, fmt.Errorf("--imatrix %s: no entries are left after --include-weights/--exclude-weights", f.imatrix)
		}
		opts.Imatrix, opts.ImatrixFile, opts.ImatrixDataset = weights, f.imatrix, im.Dataset
		opts.ImatrixChunks = int(max(im.Chunks, 0))
	}
	for _, s := range f.tensorTypes {
		o, err := quant.ParseTensorTypeOverride(s)
		if err != nil {
			return opts, fmt.Errorf("--tensor-type: %w", err)
		}
		opts.TensorTypes = append(opts.TensorTypes, o)
	}
	return opts, nil
}

// openInput opens a GGUF file, or converts a Hugging Face checkpoint
// directory on the fly (to convertOutType, as `llqt convert --outtype` would
// store it); the returned function releases it.
func openInput(path, convertOutType string, stderr io.Writer) (*formats.Model, func(), error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if st.IsDir() {
		res, err := convert.Convert(path, convert.Options{OutType: convertOutType, Encoder: tokenizer.EncodeHF})
		if err != nil {
			return nil, nil, err
		}
		for _, w := range res.Warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
		return res.Model, func() { res.Close() }, nil
	}
	f, err := gguf.OpenModel(path)
	if err != nil {
		return nil, nil, err
	}
	return f.Model(), func() { f.Close() }, nil
}

// typeTotals is one row of the closing table.
type typeTotals struct {
	Type     string  `json:"type"`
	Tensors  int     `json:"tensors"`
	Elements uint64  `json:"elements"`
	BytesIn  uint64  `json:"bytes_in"`
	BytesOut uint64  `json:"bytes_out"`
	BPW      float64 `json:"bpw"`
	// Seconds sums the encode time of the type's tensors; tensors encoded
	// concurrently overlap, so the sum may exceed the wall time.
	Seconds float64 `json:"seconds"`
}

type tensorJSON struct {
	Name     string   `json:"name"`
	Shape    []uint64 `json:"shape"`
	From     string   `json:"from"`
	To       string   `json:"to"`
	Quantize bool     `json:"quantize"`
	Fallback bool     `json:"fallback,omitempty"`
	Reason   string   `json:"reason"`
	BytesIn  uint64   `json:"bytes_in"`
	BytesOut uint64   `json:"bytes_out"`
}

type quantizeReport struct {
	Input     string       `json:"input"`
	Output    string       `json:"output,omitempty"`
	Type      string       `json:"type"`
	FileType  uint32       `json:"file_type"`
	DryRun    bool         `json:"dry_run"`
	Threads   int          `json:"threads"`
	BytesIn   uint64       `json:"bytes_in"`
	BytesOut  uint64       `json:"bytes_out"`
	BPW       float64      `json:"bpw"`
	Fallbacks int          `json:"fallbacks"`
	Seconds   float64      `json:"seconds,omitempty"`
	PerType   []typeTotals `json:"per_type"`
	Tensors   []tensorJSON `json:"tensors,omitempty"`
	// Target is the size target's choice (--target-bpw/--target-size).
	Target *target.Result `json:"target,omitempty"`
}

func runQuantize(ctx context.Context, cmd *cobra.Command, f *quantizeFlags, args []string) error {
	pa, err := parseQuantizeArgs(args)
	if err != nil {
		return err
	}
	if pa.threads > 0 {
		if cmd.Flags().Changed("threads") && f.threads != pa.threads {
			return fmt.Errorf("nthreads %d and -t %d disagree: give one", pa.threads, f.threads)
		}
		if f.threads, err = cli.Threads(pa.threads, cmd.ErrOrStderr()); err != nil {
			return err
		}
	}
	in, out := pa.in, pa.out
	targeted := f.target.set()
	var p quant.Preset
	if targeted {
		if given := f.givenTypes(pa.typeName); len(given) > 0 {
			return fmt.Errorf("both a type (%s) and a size target (%s) given: a target chooses every tensor's type, so give one or the other", strings.Join(given, ", "), f.target)
		}
		// The base plan only says which tensors are quantized; the target
		// replaces its types.
		p, _ = quant.ParsePreset("Q8_0")
	} else if p, err = f.preset(pa.typeName); err != nil {
		return err
	}
	if out == "" {
		if f.dryRun {
			out = "(dry run)"
		} else {
			// llama-quantize's default: ggml-model-TYPE.gguf beside the input.
			out = filepath.Join(filepath.Dir(in), "ggml-model-"+pa.defaultName(p)+".gguf")
			fmt.Fprintf(cmd.ErrOrStderr(), "no OUT given: writing %s\n", out)
		}
	}
	if !f.dryRun {
		if err := checkDistinct(in, out); err != nil {
			return err
		}
		if err := cli.CheckOutputFile(out, f.force); err != nil {
			return err
		}
	}
	opts, err := f.options(p, ctx)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	elapsed := map[string]time.Duration{}
	opts.OnEncoded = func(_ string, to ggml.Type, d time.Duration) {
		mu.Lock()
		elapsed[to.String()] += d
		mu.Unlock()
	}

	m, release, err := openInput(in, f.convertOutType, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer release()
	var planned *formats.Model
	var decisions []quant.Decision
	var tgt *target.Result
	if targeted {
		// target.Plan makes the base plan itself.
		planned, decisions, tgt, err = planForTarget(ctx, cmd, f, in, m, opts)
		if err == nil {
			p = tgt.Preset
		}
	} else {
		planned, decisions, err = quant.Plan(m, opts)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	ft, _ := planned.KV.Uint("general.file_type")
	rep := &quantizeReport{Input: in, Type: p.Name, FileType: uint32(ft), DryRun: f.dryRun, Threads: f.threads, Target: tgt}
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()

	start := time.Now()
	if !f.dryRun {
		rep.Output = out
		if err := writeQuantized(ctx, stderr, in, out, planned, f); err != nil {
			return err
		}
		rep.Seconds = time.Since(start).Seconds()
	}

	summarize(rep, decisions, elapsed)
	if f.dryRun || f.json {
		for _, d := range decisions {
			rep.Tensors = append(rep.Tensors, tensorJSON{Name: d.Name, Shape: d.Shape, From: d.From.String(), To: d.To.String(),
				Quantize: d.Quantize, Fallback: d.Fallback, Reason: d.Reason, BytesIn: d.BytesIn, BytesOut: d.BytesOut})
		}
	}
	if rep.Fallbacks > 0 {
		n := 0
		for _, d := range decisions {
			if d.Quantize {
				n++
			}
		}
		fmt.Fprintf(stderr, "warning: %d of %d quantized tensor(s) required fallback quantization\n", rep.Fallbacks, n)
	}
	if f.json {
		return cli.JSON(stdout, rep)
	}
	if f.dryRun {
		if err := printPlan(stdout, rep); err != nil {
			return err
		}
	}
	return printTotals(stdout, rep, !f.dryRun)
}

// checkDistinct refuses to write over the input.
func checkDistinct(in, out string) error {
	a, err := os.Stat(in)
	if err != nil {
		return err
	}
	if b, err := os.Stat(out); err == nil && os.SameFile(a, b) {
		return fmt.Errorf("%s: output is the input; the input is never modified", out)
	}
	return nil
}

func summarize(rep *quantizeReport, decisions []quant.Decision, elapsed map[string]time.Duration) {
	byType := map[string]*typeTotals{}
	var elements uint64
	for _, d := range decisions {
		k := d.To.String()
		tt := byType[k]
		if tt == nil {
			tt = &typeTotals{Type: k, Seconds: elapsed[k].Seconds()}
			byType[k] = tt
		}
		tt.Tensors++
		tt.Elements += d.Elements
		tt.BytesIn += d.BytesIn
		tt.BytesOut += d.BytesOut
		elements += d.Elements
		rep.BytesIn += d.BytesIn
		rep.BytesOut += d.BytesOut
		if d.Fallback {
			rep.Fallbacks++
		}
	}
	for _, tt := range byType {
		if tt.Elements > 0 {
			tt.BPW = float64(tt.BytesOut*8) / float64(tt.Elements)
		}
		rep.PerType = append(rep.PerType, *tt)
	}
	sort.Slice(rep.PerType, func(i, j int) bool { return rep.PerType[i].BytesOut > rep.PerType[j].BytesOut })
	if elements > 0 {
		rep.BPW = float64(rep.BytesOut*8) / float64(elements)
	}
}

func printPlan(w io.Writer, rep *quantizeReport) error {
	rows := make([][]string, 0, len(rep.Tensors))
	for _, t := range rep.Tensors {
		shape := make([]string, len(t.Shape))
		for i, d := range t.Shape {
			shape[i] = fmt.Sprint(d)
		}
		rows = append(rows, []string{t.Name, strings.Join(shape, "×"), t.From, t.To, mib(t.BytesOut), t.Reason})
	}
	return cli.Table(w, []string{"tensor", "shape", "from", "to", "size", "why"}, rows)
}

func printTotals(w io.Writer, rep *quantizeReport, timed bool) error {
	header := []string{"type", "tensors", "bytes in", "bytes out", "bpw"}
	if timed {
		header = append(header, "encode time")
	}
	var rows [][]string
	n := 0
	for _, tt := range rep.PerType {
		row := []string{tt.Type, fmt.Sprint(tt.Tensors), mib(tt.BytesIn), mib(tt.BytesOut), fmt.Sprintf("%.3f", tt.BPW)}
		if timed {
			row = append(row, fmt.Sprintf("%.2fs", tt.Seconds))
		}
		rows = append(rows, row)
		n += tt.Tensors
	}
	total := []string{"total", fmt.Sprint(n), mib(rep.BytesIn), mib(rep.BytesOut), fmt.Sprintf("%.3f", rep.BPW)}
	if timed {
		total = append(total, fmt.Sprintf("%.2fs wall", rep.Seconds))
	}
	rows = append(rows, total)
	fmt.Fprintf(w, "%s → %s as %s (general.file_type %d)\n", rep.Input, outputName(rep), rep.Type, rep.FileType)
	return cli.Table(w, header, rows)
}

func outputName(rep *quantizeReport) string {
	if rep.DryRun {
		return "(dry run, nothing written)"
	}
	return rep.Output
}

func mib(b uint64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }

// quantizeArgs are the positional arguments in llama-quantize's form.
type quantizeArgs struct {
	in, out  string
	typeName string // "" when the type comes from a flag
	threads  int    // 0 when not given
}

// defaultName is the TYPE part of llama-quantize's default output name:
// the name as typed, in capitals, or the preset's name for a number.
func (a quantizeArgs) defaultName(p quant.Preset) string {
	if a.typeName != "" {
		if _, err := strconv.Atoi(a.typeName); err != nil {
			return strings.ToUpper(a.typeName)
		}
	}
	return p.Name
}

// parseQuantizeArgs reads IN [OUT] TYPE [NTHREADS], and IN OUT alone (the
// type then comes from a flag). As in llama-quantize, a second argument
// that names a type is the type, not OUT.
func parseQuantizeArgs(args []string) (quantizeArgs, error) {
	isType := func(s string) bool { _, err := quant.ParsePreset(s); return err == nil }
	nthreads := func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("nthreads %q: want a thread count, 0 or more (llama-quantize's last argument)", s)
		}
		return n, nil
	}
	a := quantizeArgs{in: args[0]}
	rest := args[1:]
	if len(rest) > 0 && isType(rest[0]) {
		// IN TYPE [NTHREADS]
		a.typeName = rest[0]
		rest = rest[1:]
		if len(rest) > 1 {
			return a, fmt.Errorf("too many arguments after IN %s: want [NTHREADS] at most, got %q", a.typeName, rest)
		}
	} else {
		if len(rest) == 0 {
			return a, errors.New("no OUT or TYPE after IN: give IN OUT TYPE (or IN TYPE for ggml-model-TYPE.gguf beside IN)")
		}
		a.out, rest = rest[0], rest[1:]
		if len(rest) > 0 {
			if !isType(rest[0]) {
				_, err := quant.ParsePreset(rest[0])
				return a, err
			}
			a.typeName, rest = rest[0], rest[1:]
		}
	}
	if len(rest) == 1 {
		n, err := nthreads(rest[0])
		if err != nil {
			return a, err
		}
		a.threads = n
		if n == 0 {
			a.threads = runtime.NumCPU()
		}
	}
	return a, nil
}

// filterImatrix keeps the entries whose tensor name contains one of include
// (when given) and drops those that contain one of exclude, as llama-quantize does.
func filterImatrix(w map[string][]float32, include, exclude []string) map[string][]float32 {
	if len(include) == 0 && len(exclude) == 0 {
		return w
	}
	out := map[string][]float32{}
	for name, v := range w {
		keep := len(include) == 0
		for _, s := range include {
			if strings.Contains(name, s) {
				keep = true
			}
		}
		for _, s := range exclude {
			if strings.Contains(name, s) {
				keep = false
			}
		}
		if keep {
			out[name] = v
		}
	}
	return out
}

// parseOverrideKV reads llama.cpp's --override-kv KEY=TYPE:VALUE.
func parseOverrideKV(s string) (formats.KV, error) {
	kv, err := formats.ParseOverrideKV(s)
	if err != nil {
		return kv, fmt.Errorf("--override-kv %w", err)
	}
	return kv, nil
}

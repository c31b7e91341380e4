package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
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
	"github.com/llqt/llqt/quant"
)

func init() { subcommands = append(subcommands, newQuantizeCmd) }

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
}

func newQuantizeCmd() *cobra.Command {
	f := &quantizeFlags{short: map[string]*bool{}}
	cmd := &cobra.Command{
		Use:   "quantize IN OUT [TYPE]",
		Short: "Quantize a GGUF model (or a Hugging Face checkpoint) byte-for-byte like llama-quantize",
		Long: `Quantize IN (a GGUF file, or a Hugging Face checkpoint directory converted on the
fly) to OUT with one of llama-quantize's types, applying the same per-tensor mix
rules, so the output is byte-identical to llama.cpp b4748's llama-quantize.

A Hugging Face directory is converted as by "llqt convert --outtype f32" (see
--convert-outtype) and quantized in the same pass, without an intermediate file.

The type is given as --type Q4_K_M, as a flag of its own (--q4_k_m, --q8_0, …)
or as a third argument. Names are case-insensitive; Q3_K, Q4_K and Q5_K mean the
_M mixes. The output is written atomically; the input is never modified.

Types: ` + presetList(),
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := cli.SignalContext(cmd.Context())
			err := runQuantize(ctx, cmd, f, args)
			return cli.Interrupted(err, stop())
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
	fl.StringVar(&f.convertOutType, "convert-outtype", "f32", "when IN is a Hugging Face directory: the type the converter "+
		"stores matrices as before quantizing ("+strings.Join(convert.OutTypes, ", ")+"); f32 is lossless")
	addThreadsFlag(cmd, &f.threads)
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

// preset resolves the type from --type, the short flags or the third
// argument; exactly one must be given.
func (f *quantizeFlags) preset(args []string) (quant.Preset, error) {
	var given []string
	if f.typeName != "" {
		given = append(given, f.typeName)
	}
	for _, name := range shortPresets {
		if *f.short[name] {
			given = append(given, name)
		}
	}
	if len(args) == 3 {
		given = append(given, args[2])
	}
	switch len(given) {
	case 0:
		return quant.Preset{}, errors.New("no quantization type: give one as --type Q4_K_M, --q4_k_m or a third argument")
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
	if f.imatrix != "" {
		im, err := quant.ReadImatrix(f.imatrix)
		if err != nil {
			return opts, err
		}
		opts.Imatrix, opts.ImatrixFile, opts.ImatrixDataset = im.Weights, f.imatrix, im.Dataset
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
	f, err := gguf.Open(path)
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
}

func runQuantize(ctx context.Context, cmd *cobra.Command, f *quantizeFlags, args []string) error {
	in, out := args[0], args[1]
	p, err := f.preset(args)
	if err != nil {
		return err
	}
	if !f.dryRun {
		if err := checkDistinct(in, out); err != nil {
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
	planned, decisions, err := quant.Plan(m, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	ft, _ := planned.KV.Uint("general.file_type")
	rep := &quantizeReport{Input: in, Type: p.Name, FileType: uint32(ft), DryRun: f.dryRun, Threads: f.threads}
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()

	start := time.Now()
	if !f.dryRun {
		rep.Output = out
		layout, err := gguf.Plan(planned)
		if err != nil {
			return err
		}
		bar := cli.NewProgress(stderr, int64(layout.DataSize), "quantizing")
		err = gguf.WriteFile(ctx, out, planned, gguf.WriteOptions{
			Threads:   f.threads,
			Overwrite: f.force,
			Progress:  func(done, _ int64) { bar.Set(done) },
		})
		bar.Finish()
		if err != nil {
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

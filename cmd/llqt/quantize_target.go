package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/cli"
	"github.com/llqt/llqt/internal/target"
	"github.com/llqt/llqt/perplexity"
	"github.com/llqt/llqt/quant"
)

// targetFlags are quantize's size-target flags.
type targetFlags struct {
	bpw         float64
	size        string
	calibration string
	chunks      int
	nCtx        int
	method      string
}

func addTargetFlags(cmd *cobra.Command, t *targetFlags) {
	fl := cmd.Flags()
	fl.Float64Var(&t.bpw, "target-bpw", 0, "choose every tensor's type for this many bits per weight (no TYPE needed)")
	fl.StringVar(&t.size, "target-size", "", "choose every tensor's type so the file is at most SIZE bytes (K, M, G: powers of 1024)")
	fl.StringVar(&t.calibration, "calibration", "", "text on which each tensor's sensitivity (the KL-divergence it adds) is measured")
	fl.IntVar(&t.chunks, "calibration-chunks", 4, "chunks of the calibration text used per measurement")
	fl.IntVar(&t.nCtx, "calibration-ctx", 256, "tokens per calibration chunk")
	fl.StringVar(&t.method, "sensitivity", "", "kld (measure every type), hybrid (one per tensor, the others scaled by the proxy) or proxy (no model runs); default hybrid with --calibration, else proxy")
}

func (t targetFlags) set() bool { return t.bpw != 0 || t.size != "" }

func (t targetFlags) String() string {
	if t.bpw != 0 {
		return fmt.Sprintf("%g bpw", t.bpw)
	}
	return "size " + t.size
}

// parseSize reads a byte count with an optional K, M or G suffix (powers of
// 1024, an optional trailing B or iB).
func parseSize(s string) (uint64, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	u = strings.TrimSuffix(strings.TrimSuffix(u, "B"), "I")
	mult := uint64(1)
	switch {
	case strings.HasSuffix(u, "K"):
		mult, u = 1<<10, u[:len(u)-1]
	case strings.HasSuffix(u, "M"):
		mult, u = 1<<20, u[:len(u)-1]
	case strings.HasSuffix(u, "G"):
		mult, u = 1<<30, u[:len(u)-1]
	}
	v, err := strconv.ParseFloat(u, 64)
	if err != nil || v <= 0 || v*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("--target-size %q: want a positive size such as 700M, 1.5G or 734003200", s)
	}
	return uint64(v * float64(mult)), nil
}

// targetReport is the target's choice, for --json and --dry-run.
type targetReport struct {
	Target      string         `json:"target"`
	Method      target.Method  `json:"method"`
	Calibration string         `json:"calibration,omitempty"`
	ProbeTokens int            `json:"probe_tokens,omitempty"`
	BudgetBytes uint64         `json:"budget_bytes"`
	FileBytes   uint64         `json:"file_bytes"`
	EstKLD      float64        `json:"estimated_kld"`
	Tensors     []targetTensor `json:"tensors"`
	preset      quant.Preset
}

type targetTensor struct {
	Name     string             `json:"name"`
	Type     string             `json:"type"`
	Measured int                `json:"measured"`
	Loss     map[string]float64 `json:"loss"` // estimated KL-divergence added, per candidate type
}

// planForTarget replaces the base plan by the size target's choice: it
// measures each tensor's sensitivity, picks the types for the budget and
// plans again with them, shrinking the budget until the file fits.
func planForTarget(ctx context.Context, cmd *cobra.Command, f *quantizeFlags, in string, m *formats.Model, opts quant.Options, base []quant.Decision) (*formats.Model, []quant.Decision, *targetReport, error) {
	stderr := cmd.ErrOrStderr()
	t := f.target
	if t.bpw != 0 && t.size != "" {
		return nil, nil, nil, errors.New("give --target-bpw or --target-size, not both")
	}
	if t.bpw < 0 || t.bpw > 16 {
		return nil, nil, nil, fmt.Errorf("--target-bpw %g: want bits per weight between 0 and 16", t.bpw)
	}
	var size uint64
	if t.size != "" {
		var err error
		if size, err = parseSize(t.size); err != nil {
			return nil, nil, nil, err
		}
	}
	method := target.Method(t.method)
	if method == "" {
		method = target.MethodProxy
		if t.calibration != "" {
			method = target.MethodHybrid
		}
	}
	rep := &targetReport{Target: t.String(), Method: method, Calibration: t.calibration}
	topt := target.Options{Method: method, Imatrix: opts.Imatrix}
	if method != target.MethodProxy {
		if t.calibration == "" {
			return nil, nil, nil, fmt.Errorf("--sensitivity %s measures on text: give --calibration FILE", method)
		}
		if st, err := os.Stat(in); err != nil || st.IsDir() {
			return nil, nil, nil, fmt.Errorf("--sensitivity %s runs the model, which needs IN as a GGUF file (convert it first, or use --sensitivity proxy)", method)
		}
		engine, err := eval.Load(in, eval.Options{Threads: f.threads, KVF32: true})
		if err != nil {
			return nil, nil, nil, err
		}
		defer engine.Close()
		toks, popt, err := perplexity.EngineText(engine, t.calibration)
		if err != nil {
			return nil, nil, nil, err
		}
		c := engine.NewContext(t.nCtx)
		defer c.Close()
		probe, err := perplexity.NewKLDProbe(ctx, c, engine.NVocab(), toks, t.nCtx, t.chunks, popt.BOS, popt.AddBOS, f.threads)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--calibration %s: %w", t.calibration, err)
		}
		topt.Engine, topt.Probe, rep.ProbeTokens = engine, probe, probe.Tokens()
	}
	bar := cli.NewCountProgress(stderr, int64(len(base)), "measuring")
	topt.Progress = func(done, _ int) { bar.Set(int64(done)) }
	tab, err := target.Measure(ctx, m, base, topt)
	bar.Finish()
	if err != nil {
		return nil, nil, nil, err
	}

	// The header and the per-tensor padding are not tensor data: take them
	// from the base plan, then shrink the budget by any excess until the
	// file fits.
	basePlan, _, err := quant.Plan(m, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	overhead, err := planOverhead(basePlan)
	if err != nil {
		return nil, nil, nil, err
	}
	budget, err := tab.Budget(t.bpw, size, overhead)
	if err != nil {
		return nil, nil, nil, err
	}
	var planned *formats.Model
	var decisions []quant.Decision
	var choice map[string]quant.Choice
	for try := 0; ; try++ {
		if choice, err = tab.Pick(budget); err != nil {
			return nil, nil, nil, err
		}
		popts := opts
		if popts.Preset, err = target.Preset(choice); err != nil {
			return nil, nil, nil, err
		}
		popts.TensorTypes = append(append([]quant.TensorTypeOverride(nil), opts.TensorTypes...), target.Overrides(choice)...)
		popts.KVOverrides = append(append([]formats.KV(nil), opts.KVOverrides...), target.PlanKV(rep.Target, method, choice)...)
		if planned, decisions, err = quant.Plan(m, popts); err != nil {
			return nil, nil, nil, err
		}
		rep.preset = popts.Preset
		fileBytes, err := gguf.FileSize(planned)
		if err != nil {
			return nil, nil, nil, err
		}
		rep.FileBytes, rep.BudgetBytes = fileBytes, budget
		if size == 0 || fileBytes <= size {
			break
		}
		if try == 8 || budget <= fileBytes-size {
			return nil, nil, nil, fmt.Errorf("%w: the smallest choice makes a file of %d bytes, over %d", quant.ErrTargetTooSmall, fileBytes, size)
		}
		budget -= fileBytes - size
	}
	for _, tt := range tab.Tensors {
		c := choice[tt.Name]
		rep.EstKLD += c.Loss
		loss := map[string]float64{}
		for _, cand := range tt.Choices {
			loss[cand.Type.String()] = cand.Loss
		}
		rep.Tensors = append(rep.Tensors, targetTensor{Name: tt.Name, Type: c.Type.String(), Measured: tt.Measured, Loss: loss})
	}
	sort.Slice(rep.Tensors, func(i, j int) bool { return rep.Tensors[i].Name < rep.Tensors[j].Name })
	for i, d := range decisions {
		if c, ok := choice[d.Name]; ok {
			decisions[i].Reason = fmt.Sprintf("target: est. KLD %.3g of %s", c.Loss, describeLosses(tab, d.Name))
		}
	}
	fmt.Fprintf(stderr, "target %s: %d tensors chosen by %s sensitivity, estimated KL-divergence %.4g, file %s\n",
		rep.Target, len(choice), method, rep.EstKLD, mib(rep.FileBytes))
	return planned, decisions, rep, nil
}

// planOverhead is what a planned file holds besides tensor data: the header
// and the padding.
func planOverhead(m *formats.Model) (uint64, error) {
	total, err := gguf.FileSize(m)
	if err != nil {
		return 0, err
	}
	var data uint64
	for _, t := range m.Tensors {
		n, err := t.Size()
		if err != nil {
			return 0, err
		}
		data += n
	}
	return total - data, nil
}

// describeLosses lists a tensor's candidates with their losses, smallest
// type first, for the dry-run table.
func describeLosses(tab *target.Table, name string) string {
	for _, t := range tab.Tensors {
		if t.Name != name {
			continue
		}
		cs := append([]quant.Choice(nil), t.Choices...)
		sort.Slice(cs, func(i, j int) bool { return cs[i].Bytes < cs[j].Bytes })
		parts := make([]string, len(cs))
		for i, c := range cs {
			parts[i] = fmt.Sprintf("%s %.2g", c.Type, c.Loss)
		}
		return strings.Join(parts, ", ")
	}
	return ""
}

package target

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/perplexity"
	"github.com/llqt/llqt/quant"
)

// ParseSize reads a byte count with an optional K, M or G suffix (powers of
// 1024, an optional trailing B or iB), as --target-size takes it.
func ParseSize(s string) (uint64, error) {
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
	if err != nil || !(v > 0) || v*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("size %q: want a positive size such as 700M, 1.5G or 734003200", s)
	}
	return uint64(v * float64(mult)), nil
}

// Spec is a size target and how to measure for it.
type Spec struct {
	// BPW (bits per weight of the whole model) or Size (the whole file's
	// bytes); exactly one is set.
	BPW  float64
	Size uint64
	// Method estimates the losses ("": hybrid with Calibration, else proxy).
	Method Method
	// Input is the model's GGUF file, loaded to measure; Calibration the
	// text measured on, in Chunks chunks of NCtx tokens.
	Input, Calibration string
	Chunks, NCtx       int
	Threads            int
	// Progress, if set, is called after each tensor is measured.
	Progress func(done, total int)
}

// String is the target as asked for: "4.5 bpw" or "size 4331000".
func (s Spec) String() string {
	if s.BPW != 0 {
		return fmt.Sprintf("%g bpw", s.BPW)
	}
	return fmt.Sprintf("size %d", s.Size)
}

// Result is the choice for a target, as quantize --json and --dry-run show it.
type Result struct {
	Target      string         `json:"target"`
	Method      Method         `json:"method"`
	Calibration string         `json:"calibration,omitempty"`
	ProbeTokens int            `json:"probe_tokens,omitempty"`
	BudgetBytes uint64         `json:"budget_bytes"`
	FileBytes   uint64         `json:"file_bytes"`
	EstKLD      float64        `json:"estimated_kld"`
	Tensors     []TensorResult `json:"tensors"`
	// Preset labels the file (Preset); Choice is the type per tensor and
	// Table what was measured.
	Preset quant.Preset            `json:"-"`
	Choice map[string]quant.Choice `json:"-"`
	Table  *Table                  `json:"-"`
}

// TensorResult is one tensor's chosen type and every candidate's loss.
type TensorResult struct {
	Name     string             `json:"name"`
	Type     string             `json:"type"`
	Measured int                `json:"measured"`
	Loss     map[string]float64 `json:"loss"` // estimated KL-divergence added, per candidate type
}

// Plan plans m for a size target: it measures each tensor's sensitivity,
// picks the types for the budget and plans again with them (on top of
// opts, whose preset only says which tensors are quantized), shrinking the
// budget until the file fits a size target.
func Plan(ctx context.Context, m *formats.Model, opts quant.Options, s Spec) (*formats.Model, []quant.Decision, *Result, error) {
	if (s.BPW != 0) == (s.Size != 0) {
		return nil, nil, nil, errors.New("give a bits-per-weight target or a size target, not both or neither")
	}
	if s.BPW < 0 || s.BPW > 16 {
		return nil, nil, nil, fmt.Errorf("target %g bpw: want bits per weight between 0 and 16", s.BPW)
	}
	method := s.Method
	if method == "" {
		method = MethodProxy
		if s.Calibration != "" {
			method = MethodHybrid
		}
	}
	res := &Result{Target: s.String(), Method: method, Calibration: s.Calibration}
	basePlan, base, err := quant.Plan(m, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	topt := Options{Method: method, Imatrix: opts.Imatrix, Progress: s.Progress}
	if method != MethodProxy {
		if s.Calibration == "" {
			return nil, nil, nil, fmt.Errorf("sensitivity %s measures on text: give calibration text", method)
		}
		if st, err := os.Stat(s.Input); err != nil || st.IsDir() {
			return nil, nil, nil, fmt.Errorf("sensitivity %s runs the model, which needs the input as a GGUF file (convert it first, or use the proxy)", method)
		}
		engine, err := eval.Load(s.Input, eval.Options{Threads: s.Threads, KVF32: true})
		if err != nil {
			return nil, nil, nil, err
		}
		defer engine.Close()
		toks, popt, err := perplexity.EngineText(engine, s.Calibration)
		if err != nil {
			return nil, nil, nil, err
		}
		c := engine.NewContext(s.NCtx)
		defer c.Close()
		probe, err := perplexity.NewKLDProbe(ctx, c, engine.NVocab(), toks, s.NCtx, s.Chunks, popt.BOS, popt.AddBOS, s.Threads)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("calibration %s: %w", s.Calibration, err)
		}
		topt.Engine, topt.Probe, res.ProbeTokens = engine, probe, probe.Tokens()
	}
	tab, err := Measure(ctx, m, base, topt)
	if err != nil {
		return nil, nil, nil, err
	}
	res.Table = tab

	// The header and the per-tensor padding are not tensor data: take them
	// from the base plan, then shrink the budget by any excess until the
	// file fits.
	overhead, err := planOverhead(basePlan)
	if err != nil {
		return nil, nil, nil, err
	}
	budget, err := tab.Budget(s.BPW, s.Size, overhead)
	if err != nil {
		return nil, nil, nil, err
	}
	var planned *formats.Model
	var decisions []quant.Decision
	for try := 0; ; try++ {
		if res.Choice, err = tab.Pick(budget); err != nil {
			return nil, nil, nil, err
		}
		popts := opts
		if popts.Preset, err = Preset(res.Choice); err != nil {
			return nil, nil, nil, err
		}
		popts.TensorTypes = append(append([]quant.TensorTypeOverride(nil), opts.TensorTypes...), Overrides(res.Choice)...)
		popts.KVOverrides = append(append([]formats.KV(nil), opts.KVOverrides...), PlanKV(res.Target, method, res.Choice)...)
		if planned, decisions, err = quant.Plan(m, popts); err != nil {
			return nil, nil, nil, err
		}
		res.Preset = popts.Preset
		fileBytes, err := gguf.FileSize(planned)
		if err != nil {
			return nil, nil, nil, err
		}
		res.FileBytes, res.BudgetBytes = fileBytes, budget
		if s.Size == 0 || fileBytes <= s.Size {
			break
		}
		if try == 8 || budget <= fileBytes-s.Size {
			return nil, nil, nil, fmt.Errorf("%w: the smallest choice makes a file of %d bytes, over %d", quant.ErrTargetTooSmall, fileBytes, s.Size)
		}
		budget -= fileBytes - s.Size
	}
	for _, tt := range tab.Tensors {
		c := res.Choice[tt.Name]
		res.EstKLD += c.Loss
		loss := map[string]float64{}
		for _, cand := range tt.Choices {
			loss[cand.Type.String()] = cand.Loss
		}
		res.Tensors = append(res.Tensors, TensorResult{Name: tt.Name, Type: c.Type.String(), Measured: tt.Measured, Loss: loss})
	}
	sort.Slice(res.Tensors, func(i, j int) bool { return res.Tensors[i].Name < res.Tensors[j].Name })
	for i, d := range decisions {
		if c, ok := res.Choice[d.Name]; ok {
			decisions[i].Reason = fmt.Sprintf("target: est. KLD %.3g of %s", c.Loss, tab.describeLosses(d.Name))
		}
	}
	return planned, decisions, res, nil
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
func (t *Table) describeLosses(name string) string {
	for _, tt := range t.Tensors {
		if tt.Name != name {
			continue
		}
		cs := append([]quant.Choice(nil), tt.Choices...)
		sort.Slice(cs, func(i, j int) bool { return cs[i].Bytes < cs[j].Bytes })
		parts := make([]string, len(cs))
		for i, c := range cs {
			parts[i] = fmt.Sprintf("%s %.2g", c.Type, c.Loss)
		}
		return strings.Join(parts, ", ")
	}
	return ""
}

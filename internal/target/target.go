// Package target chooses per-tensor quantization types for a size target
// (llqt quantize --target-bpw / --target-size): every quantizable tensor
// gets the type that, within the bytes allowed, keeps the estimated total
// KL-divergence from the unquantized model smallest (quant.ChooseTypes).
//
// A tensor's loss in a type is the KL-divergence it adds when it alone is
// quantized to that type, on a few chunks of calibration text
// (perplexity.KLDProbe, with the engine's weight swapped in place):
//   - MethodKLD measures every candidate of every tensor;
//   - MethodHybrid measures one candidate per tensor (its smallest) and
//     scales the others by the proxy, the importance-weighted squared error
//     of the tensor's products (quant.ProxyLoss), which tracks the measured
//     loss within a tensor (TestProxyTracksKLD);
//   - MethodProxy runs no model: the proxy alone, for an input the engine
//     cannot load or when no calibration text is given.
package target

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/perplexity"
	"github.com/llqt/llqt/quant"
)

// Method is how tensor losses are estimated.
type Method string

// The methods, from the most to the least model runs.
const (
	MethodKLD    Method = "kld"
	MethodHybrid Method = "hybrid"
	MethodProxy  Method = "proxy"
)

// Options say how to measure.
type Options struct {
	Method Method
	// Imatrix weights the proxy (and the quantization) as quantize would.
	Imatrix map[string][]float32
	// Engine is the input model loaded for measuring, Probe a KL-divergence
	// probe on one of its contexts; both nil for MethodProxy.
	Engine *eval.Model
	Probe  *perplexity.KLDProbe
	// ProxyRows bounds the rows the proxy quantizes per tensor (spread
	// evenly); 0 means 256.
	ProxyRows int
	// Progress, if set, is called after each tensor.
	Progress func(done, total int)
}

// Tensor is one quantizable tensor's candidates, with their losses.
type Tensor struct {
	Name     string
	Shape    []uint64
	Elements uint64
	Choices  []quant.Choice
	// Measured says how many of the losses were measured with the model.
	Measured int
}

// Table is what Measure found: the tensors a target chooses types for, and
// the bytes of those that keep theirs.
type Table struct {
	Method  Method
	Tensors []Tensor
	// FixedBytes are the data bytes of the tensors the target does not
	// choose (norms, and tensors no candidate divides); Elements counts the
	// values of every tensor (the denominator of bits per weight).
	FixedBytes uint64
	Elements   uint64
}

// Measure reads every tensor of m that the base plan quantizes and works out
// each candidate type's loss. base are quant.Plan's decisions for m (any
// preset: only which tensors it quantizes matters).
func Measure(ctx context.Context, m *formats.Model, base []quant.Decision, opt Options) (*Table, error) {
	if opt.Method == "" {
		opt.Method = MethodHybrid
	}
	if opt.Method != MethodProxy && (opt.Engine == nil || opt.Probe == nil) {
		return nil, fmt.Errorf("target: method %s needs the model loaded and calibration text", opt.Method)
	}
	if opt.ProxyRows <= 0 {
		opt.ProxyRows = 256
	}
	byName := map[string]*formats.Tensor{}
	for _, t := range m.Tensors {
		byName[t.Name] = t
	}
	tab := &Table{Method: opt.Method}
	var todo []quant.Decision
	for _, d := range base {
		tab.Elements += d.Elements
		t := byName[d.Name]
		if !d.Quantize || !d.To.Quantized() || t == nil || len(d.Shape) < 2 || len(quant.CandidatesFor(d.Shape[0], d.Elements, hasImportance(opt.Imatrix, d))) == 0 {
			tab.FixedBytes += d.BytesIn
			if d.Quantize {
				tab.FixedBytes += d.BytesOut - d.BytesIn
			}
			continue
		}
		todo = append(todo, d)
	}
	var gains []float64 // measured loss / proxy, for tensors the engine cannot swap
	var unmeasured []int
	for i, d := range todo {
		t := byName[d.Name]
		data, err := readFloats(t)
		if err != nil {
			return nil, err
		}
		ne0 := int(d.Shape[0])
		var w []float32
		if im := opt.Imatrix[d.Name]; len(im) == ne0 {
			w = im
		}
		tt := Tensor{Name: d.Name, Shape: d.Shape, Elements: d.Elements, Choices: quant.CandidatesFor(d.Shape[0], d.Elements, w != nil)}
		proxies := make([]float64, len(tt.Choices))
		for j, c := range tt.Choices {
			if proxies[j], err = quant.ProxyLoss(c.Type, data, ne0, w, opt.ProxyRows); err != nil {
				return nil, fmt.Errorf("target: %s as %s: %w", d.Name, c.Type, err)
			}
		}
		measure := func(typ ggml.Type) (float64, bool, error) {
			q, err := quant.Quantize(typ, data, ne0, w)
			if err != nil {
				return 0, false, fmt.Errorf("target: %s as %s: %w", d.Name, typ, err)
			}
			restore, err := opt.Engine.ReplaceWeight(d.Name, typ, q)
			if err != nil {
				return 0, false, nil // not a weight the engine multiplies (yet): use the proxy
			}
			defer restore()
			kld, err := opt.Probe.Measure(ctx)
			if err != nil {
				return 0, false, fmt.Errorf("target: measuring %s as %s: %w", d.Name, typ, err)
			}
			return kld, true, nil
		}
		switch opt.Method {
		case MethodKLD:
			for j, c := range tt.Choices {
				kld, ok, err := measure(c.Type)
				if err != nil {
					return nil, err
				}
				if ok {
					tt.Choices[j].Loss = kld
					tt.Measured++
				}
			}
			if tt.Measured == 0 {
				unmeasured = append(unmeasured, i)
			}
		case MethodHybrid:
			ref := hybridReference(tt.Choices)
			kld, ok, err := measure(tt.Choices[ref].Type)
			if err != nil {
				return nil, err
			}
			if ok && proxies[ref] > 0 {
				gain := kld / proxies[ref]
				gains = append(gains, gain)
				for j := range tt.Choices {
					tt.Choices[j].Loss = gain * proxies[j]
				}
				tt.Choices[ref].Loss = kld
				tt.Measured = 1
			} else {
				unmeasured = append(unmeasured, i)
			}
		case MethodProxy:
			for j := range tt.Choices {
				tt.Choices[j].Loss = proxies[j]
			}
		default:
			return nil, fmt.Errorf("target: unknown method %q (want kld, hybrid or proxy)", opt.Method)
		}
		if tt.Measured == 0 && opt.Method != MethodProxy {
			// Scaled below, once the typical gain is known.
			for j := range tt.Choices {
				tt.Choices[j].Loss = proxies[j]
			}
		}
		tab.Tensors = append(tab.Tensors, tt)
		if opt.Progress != nil {
			opt.Progress(i+1, len(todo))
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if len(unmeasured) > 0 {
		g := 1.0
		if len(gains) > 0 {
			slices.Sort(gains)
			g = gains[len(gains)/2]
		}
		for _, i := range unmeasured {
			for j := range tab.Tensors[i].Choices {
				tab.Tensors[i].Choices[j].Loss *= g
			}
		}
	}
	return tab, nil
}

// hybridReference is the candidate the hybrid method measures: the smallest
// one that is not an importance-only i-quant (Q2_K where the row allows),
// whose loss is large enough to measure well and small enough that the
// proxy's scale carries over to the larger types; the smallest overall
// when every candidate is such an i-quant.
func hybridReference(cs []quant.Choice) int {
	ref := -1
	for j, c := range cs {
		if !quant.NeedsImportance(c.Type) && (ref < 0 || c.Bytes < cs[ref].Bytes) {
			ref = j
		}
	}
	if ref >= 0 {
		return ref
	}
	ref = 0
	for j, c := range cs {
		if c.Bytes < cs[ref].Bytes {
			ref = j
		}
	}
	return ref
}

// hasImportance says the imatrix has an entry for d's rows.
func hasImportance(im map[string][]float32, d quant.Decision) bool {
	return len(d.Shape) > 0 && len(im[d.Name]) == int(d.Shape[0])
}

// readFloats materialises t (its transforms applied) as float32.
func readFloats(t *formats.Tensor) ([]float32, error) {
	raw, err := formats.Materialize(&formats.Tensor{Name: t.Name, Shape: t.Shape, Type: ggml.TypeF32, Source: t.Source, Transforms: t.Transforms},
		quant.Codec{})
	if err != nil {
		return nil, err
	}
	return formats.PlainCodec{}.Decode(ggml.TypeF32, raw, int(t.Elements()))
}

// Budget is the tensor-data bytes the chosen tensors may take: for a bits
// per weight target, bpw/8 bytes per value of the whole model less the
// fixed tensors; for a file size, the size less the fixed tensors and
// overhead (header and padding, which the caller knows).
func (t *Table) Budget(bpw float64, size, overhead uint64) (uint64, error) {
	var total float64
	switch {
	case bpw > 0:
		total = bpw / 8 * float64(t.Elements)
	case size > 0:
		total = float64(size) - float64(overhead)
	default:
		return 0, fmt.Errorf("target: give a bits-per-weight or a size target")
	}
	if total <= float64(t.FixedBytes) {
		return 0, fmt.Errorf("%w: the tensors that keep their type alone take %d bytes", quant.ErrTargetTooSmall, t.FixedBytes)
	}
	return uint64(math.Floor(total)) - t.FixedBytes, nil
}

// Pick chooses the types for a budget of tensor-data bytes.
func (t *Table) Pick(budget uint64) (map[string]quant.Choice, error) {
	cs := make([]quant.TensorChoices, len(t.Tensors))
	for i, tt := range t.Tensors {
		cs[i] = quant.TensorChoices{Name: tt.Name, Choices: tt.Choices}
	}
	return quant.ChooseTypes(cs, budget)
}

// Overrides turns a choice into quant's per-tensor overrides (exact names).
func Overrides(choice map[string]quant.Choice) []quant.TensorTypeOverride {
	names := make([]string, 0, len(choice))
	for n := range choice {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]quant.TensorTypeOverride, len(names))
	for i, n := range names {
		out[i] = quant.TensorTypeOverride{Regex: "^" + regexp.QuoteMeta(n) + "$", Type: choice[n].Type}
	}
	return out
}

// Preset is the preset whose file type labels the result: the one named
// after the type holding the most bytes (general.file_type describes a
// mixed file by its main type, as llama.cpp's presets do).
func Preset(choice map[string]quant.Choice) (quant.Preset, error) {
	bytes := map[ggml.Type]uint64{}
	for _, c := range choice {
		bytes[c.Type] += c.Bytes
	}
	main := ggml.TypeQ8_0
	for t, b := range bytes {
		if b > bytes[main] || (b == bytes[main] && t < main) {
			main = t
		}
	}
	name := map[ggml.Type]string{
		ggml.TypeQ2_K: "Q2_K", ggml.TypeQ3_K: "Q3_K_M", ggml.TypeQ4_K: "Q4_K_M", ggml.TypeQ5_K: "Q5_K_M",
		ggml.TypeQ6_K: "Q6_K", ggml.TypeQ8_0: "Q8_0", ggml.TypeIQ4_XS: "IQ4_XS", ggml.TypeIQ4_NL: "IQ4_NL",
		ggml.TypeQ4_0: "Q4_0", ggml.TypeQ5_0: "Q5_0",
		// The presets whose main type each i-quant is (IQ2_S blocks are
		// IQ2_M's; the IQ2_S preset's are IQ2_XS).
		ggml.TypeIQ1_S: "IQ1_S", ggml.TypeIQ1_M: "IQ1_M", ggml.TypeIQ2_XXS: "IQ2_XXS", ggml.TypeIQ2_XS: "IQ2_XS",
		ggml.TypeIQ2_S: "IQ2_M", ggml.TypeIQ3_XXS: "IQ3_XXS", ggml.TypeIQ3_S: "IQ3_S",
	}[main]
	if name == "" {
		name = "Q8_0"
	}
	return quant.ParsePreset(name)
}

// PlanKV is the plan as metadata: llqt.quantize.target (what was asked),
// llqt.quantize.method and llqt.quantize.plan ("NAME=TYPE" per tensor, in
// name order). Stock llama.cpp ignores these keys.
func PlanKV(target string, method Method, choice map[string]quant.Choice) []formats.KV {
	names := make([]string, 0, len(choice))
	for n := range choice {
		names = append(names, n)
	}
	sort.Strings(names)
	plan := make([]string, len(names))
	for i, n := range names {
		plan[i] = n + "=" + strings.ToLower(choice[n].Type.String())
	}
	return []formats.KV{
		{Key: "llqt.quantize.target", Value: target},
		{Key: "llqt.quantize.method", Value: string(method)},
		{Key: "llqt.quantize.plan", Value: formats.Array{Elem: formats.ValString, Values: plan}},
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/internal/cli"
	"github.com/llqt/llqt/internal/target"
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

// parseSize reads --target-size (see target.ParseSize).
func parseSize(s string) (uint64, error) {
	n, err := target.ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("--target-size %q: want a positive size such as 700M, 1.5G or 734003200", s)
	}
	return n, nil
}

// planForTarget replaces the base plan by the size target's choice (see
// target.Plan), with a progress bar on a terminal.
func planForTarget(ctx context.Context, cmd *cobra.Command, f *quantizeFlags, in string, m *formats.Model, opts quant.Options) (*formats.Model, []quant.Decision, *target.Result, error) {
	stderr := cmd.ErrOrStderr()
	t := f.target
	if t.bpw != 0 && t.size != "" {
		return nil, nil, nil, errors.New("give --target-bpw or --target-size, not both")
	}
	if t.bpw < 0 || t.bpw > 16 {
		return nil, nil, nil, fmt.Errorf("--target-bpw %g: want bits per weight between 0 and 16", t.bpw)
	}
	// The flag-level mistakes, named by their flags before any work.
	if m := target.Method(t.method); (m == target.MethodKLD || m == target.MethodHybrid) && t.calibration == "" {
		return nil, nil, nil, fmt.Errorf("--sensitivity %s measures on text: give --calibration FILE", m)
	}
	if st, err := os.Stat(in); t.calibration != "" && t.method != string(target.MethodProxy) && (err != nil || st.IsDir()) {
		return nil, nil, nil, fmt.Errorf("--calibration runs the model, which needs IN as a GGUF file (convert it first, or use --sensitivity proxy)")
	}
	spec := target.Spec{BPW: t.bpw, Method: target.Method(t.method), Input: in, Calibration: t.calibration,
		Chunks: t.chunks, NCtx: t.nCtx, Threads: f.threads}
	if t.size != "" {
		var err error
		if spec.Size, err = parseSize(t.size); err != nil {
			return nil, nil, nil, err
		}
	}
	var bar *cli.Progress
	spec.Progress = func(done, total int) {
		if bar == nil {
			bar = cli.NewCountProgress(stderr, int64(total), "measuring")
		}
		bar.Set(int64(done))
	}
	planned, decisions, res, err := target.Plan(ctx, m, opts, spec)
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return nil, nil, nil, err
	}
	res.Target = t.String() // as the user wrote it
	fmt.Fprintf(stderr, "target %s: %d tensors chosen by %s sensitivity, estimated KL-divergence %.4g, file %s\n",
		res.Target, len(res.Choice), res.Method, res.EstKLD, mib(res.FileBytes))
	return planned, decisions, res, nil
}

package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llqt/llqt/convert"
	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/eval/tokenizer"
	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/atomicfile"
	"github.com/llqt/llqt/internal/target"
	"github.com/llqt/llqt/perplexity"
	"github.com/llqt/llqt/quant"
)

// Defaults of a report run: enough tokens for stable KL statistics on a
// small model in a few minutes on two cores.
const (
	DefaultChunks      = 16
	DefaultBenchPrompt = 128
	DefaultBenchGen    = 32
	DefaultBenchReps   = 3
	// DefaultMaxNCtx caps the default context at llama-perplexity's 512;
	// models trained on less get their training context.
	DefaultMaxNCtx = 512
)

// Method describes how perplexity is computed, for the report header.
const Method = "llama-perplexity (b4748): non-overlapping n_ctx chunks, BOS first, positions n_ctx/2…n_ctx−2 scored"

// Config says what to build.
type Config struct {
	// Source is a Hugging Face checkpoint directory or a GGUF file.
	Source string
	// Types are the variants: f32, f16, bf16, q8_0 and llama-quantize's
	// presets (q6_k, q4_k_m, …), case-insensitive.
	Types []string
	// Text is the evaluation text; OutDir receives the variants and the
	// report files.
	Text   string
	OutDir string
	// NCtx (0: min(512, training context)), Chunks (0: DefaultChunks),
	// NBatch (0: 2048) and Threads (0: all CPUs) set the measurements.
	NCtx, Chunks, NBatch, Threads int
	// BenchPrompt, BenchGen, BenchReps set the speed test (0: defaults;
	// negative: skip that part).
	BenchPrompt, BenchGen, BenchReps int
	// Imatrix is an importance matrix (llama-imatrix's .dat or GGUF) for
	// the "+imat" and "auto@" variants.
	Imatrix string
	// Calibration is the text on which an "auto@" variant measures each
	// tensor's sensitivity (in CalibrationChunks chunks of CalibrationCtx
	// tokens; 0: 4 and 256, as quantize); without it the proxy is used.
	Calibration                       string
	CalibrationChunks, CalibrationCtx int
	// Version and Commit identify the llqt build in the provenance.
	Version, Commit string
	// Log receives one line per step; nil is silent.
	Log io.Writer
}

// variantSpec is one requested variant and how to make it.
type variantSpec struct {
	name    string // as asked for, lower case
	typ     string // llama.cpp's spelling of the preset (for auto@, the target's)
	outType string // convert --outtype, when converted directly
	preset  quant.Preset
	// imatrix: quantized with Config.Imatrix ("PRESET+imat").
	imatrix bool
	// target: an "auto@" variant, whose per-tensor types a size target
	// chooses (bits per weight, a size, or the size of a preset's file).
	target *targetSpec
}

type targetSpec struct {
	bpw    float64
	size   uint64
	preset *quant.Preset // auto@PRESET: the size of that preset's file
}

// label is the variant's name in tables and plots: the preset, with
// "+imat" when quantized with the importance matrix, or "auto@…".
func (s variantSpec) label() string {
	switch {
	case s.target != nil:
		return "auto@" + strings.TrimPrefix(s.name, "auto@")
	case s.imatrix:
		return s.typ + "+imat"
	}
	return s.typ
}

// precisionRank orders the lossless and half-precision types above any
// quantization when bits per weight tie.
var precisionRank = map[string]int{"F32": 3, "F16": 2, "BF16": 1}

// parseTypes reads --types: presets (q4_k_m), presets with the importance
// matrix (q4_k_m+imat) and size targets (auto@4.5bpw, auto@4.1M,
// auto@q4_k_m for the size of that preset's file).
func parseTypes(types []string, hf, haveImatrix bool) ([]variantSpec, error) {
	var specs []variantSpec
	seen := map[string]bool{}
	for _, t := range types {
		name := strings.ToLower(strings.TrimSpace(t))
		if name == "" {
			continue
		}
		s, err := parseVariant(name, hf, haveImatrix)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		if seen[s.label()] {
			return nil, fmt.Errorf("variant %s given twice", s.label())
		}
		seen[s.label()] = true
		specs = append(specs, s)
	}
	if len(specs) == 0 {
		return nil, errors.New("no variants: give --types, e.g. f16,q8_0,q4_k_m")
	}
	return specs, nil
}

func parseVariant(name string, hf, haveImatrix bool) (variantSpec, error) {
	if rest, ok := strings.CutPrefix(name, "auto@"); ok {
		ts := &targetSpec{}
		switch {
		case strings.HasSuffix(rest, "bpw"):
			v, err := strconv.ParseFloat(strings.TrimSuffix(rest, "bpw"), 64)
			if err != nil || !(v > 0) || v > 16 {
				return variantSpec{}, fmt.Errorf("want auto@BITSbpw with 0 < BITS ≤ 16, e.g. auto@4.5bpw")
			}
			ts.bpw = v
		default:
			if p, err := quant.ParsePreset(rest); err == nil && !p.Copy {
				if p.NeedsImatrix && !haveImatrix {
					return variantSpec{}, fmt.Errorf("the size of %s needs its file, which needs an importance matrix: give --imatrix FILE", p.Name)
				}
				ts.preset = &p
			} else if ts.size, err = target.ParseSize(rest); err != nil {
				return variantSpec{}, fmt.Errorf("want auto@4.5bpw, auto@SIZE (bytes, or with K/M/G) or auto@PRESET")
			}
		}
		p, _ := quant.ParsePreset("Q8_0") // the base plan only says which tensors are quantized
		return variantSpec{name: name, typ: "auto", preset: p, target: ts, imatrix: haveImatrix}, nil
	}
	base, imat := strings.CutSuffix(name, "+imat")
	p, err := quant.ParsePreset(base)
	if err != nil {
		return variantSpec{}, err
	}
	switch {
	case p.Copy:
		return variantSpec{}, errors.New("not a variant (it copies the input)")
	case !p.Supported():
		return variantSpec{}, fmt.Errorf("%s needs block formats llqt does not implement yet", p.Name)
	case imat && !haveImatrix:
		return variantSpec{}, errors.New("+imat quantizes with the importance matrix: give --imatrix FILE")
	case imat && !p.Default.Quantized():
		return variantSpec{}, fmt.Errorf("%s is not quantized, so it takes no importance matrix", p.Name)
	case p.NeedsImatrix && !imat:
		return variantSpec{}, fmt.Errorf("%s needs an importance matrix: write %s+imat and give --imatrix FILE", p.Name, strings.ToLower(p.Name))
	}
	s := variantSpec{name: name, typ: p.Name, preset: p, imatrix: imat}
	if hf && !imat && slices.Contains(convert.OutTypes, strings.ToLower(p.Name)) && strings.ToLower(p.Name) != "auto" {
		s.outType = strings.ToLower(p.Name)
	}
	return s, nil
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

// Build produces every variant (reusing files whose recorded provenance
// matches), measures them and returns the report; WriteAll writes it.
func Build(ctx context.Context, cfg Config) (*Report, error) {
	st, err := os.Stat(cfg.Source)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	hf := st.IsDir()
	specs, err := parseTypes(cfg.Types, hf, cfg.Imatrix != "")
	if err != nil {
		return nil, err
	}
	var imat *quant.Imatrix
	var imatHash FileHash
	if cfg.Imatrix != "" {
		if imat, err = quant.ReadImatrix(cfg.Imatrix); err != nil {
			return nil, err
		}
		if imatHash, err = hashFile(cfg.Imatrix); err != nil {
			return nil, fmt.Errorf("imatrix: %w", err)
		}
	}
	var calHash FileHash
	if cfg.Calibration != "" {
		if calHash, err = hashFile(cfg.Calibration); err != nil {
			return nil, fmt.Errorf("calibration: %w", err)
		}
	}
	if cfg.CalibrationChunks <= 0 {
		cfg.CalibrationChunks = 4
	}
	if cfg.CalibrationCtx <= 0 {
		cfg.CalibrationCtx = 256
	}
	// Size targets run after the presets: auto@PRESET takes its size from
	// the preset's plan, and a Hugging Face source is measured on its most
	// precise converted variant.
	slices.SortStableFunc(specs, func(a, b variantSpec) int {
		return cmpBool(a.target != nil, b.target != nil)
	})
	if cfg.Text == "" {
		return nil, errors.New("no text: give -f TEXT")
	}
	if cfg.OutDir == "" {
		return nil, errors.New("no output directory: give --out DIR")
	}
	if cfg.Chunks <= 0 {
		cfg.Chunks = DefaultChunks
	}
	if cfg.NBatch <= 0 {
		cfg.NBatch = perplexity.DefaultNBatch
	}
	if cfg.Threads <= 0 {
		cfg.Threads = runtime.NumCPU()
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		} else if *v < 0 {
			*v = 0
		}
	}
	def(&cfg.BenchPrompt, DefaultBenchPrompt)
	def(&cfg.BenchGen, DefaultBenchGen)
	def(&cfg.BenchReps, DefaultBenchReps)
	if cfg.BenchReps == 0 {
		cfg.BenchPrompt, cfg.BenchGen = 0, 0
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, err
	}

	cfg.logf("hashing inputs")
	src, err := hashInput(cfg.Source)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	textHash, err := hashFile(cfg.Text)
	if err != nil {
		return nil, fmt.Errorf("text: %w", err)
	}
	r := &Report{Schema: Schema, Provenance: Provenance{
		Tool: "llqt", Version: cfg.Version, Commit: cfg.Commit, GoVersion: runtime.Version(),
		Date:   time.Now().UTC().Format(time.RFC3339),
		Source: src, Text: Text{Path: cfg.Text, Bytes: textHash.Bytes, SHA256: textHash.SHA256},
		CPU: hostCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, Threads: cfg.Threads,
	}}

	// Produce the files.
	stem := strings.TrimSuffix(baseName(cfg.Source), filepath.Ext(cfg.Source))
	for i, s := range specs {
		v := Variant{Name: s.name, Type: s.typ, Label: s.label(), File: fmt.Sprintf("%s-%s.gguf", stem, fileLabel(s.label()))}
		if s.imatrix {
			v.Imatrix = imatHash.Name
		}
		if s.target != nil {
			v.Target = s.label()
			if cfg.Calibration != "" {
				v.Calibration = calHash.Name
			}
		}
		path := filepath.Join(cfg.OutDir, v.File)
		sc := sidecar{Schema: sidecarSchema, Source: src.SHA256, Type: s.label(), Recipe: s.recipe(hf, imatHash, calHash, cfg),
			Version: cfg.Version, Commit: cfg.Commit}
		if old, ok := reusable(path, sc); ok {
			v.Reused, v.QuantizeSeconds, v.SHA256 = true, old.Seconds, old.Output
			if old.FileType != "" {
				v.Type = old.FileType
			}
			cfg.logf("[%d/%d] %s: reusing %s (same source, recipe and llqt build)", i+1, len(specs), s.typ, path)
		} else {
			cfg.logf("[%d/%d] %s: %s", i+1, len(specs), s.typ, sc.Recipe)
			t0 := time.Now()
			typ, err := produce(ctx, cfg, s, hf, path, imat, r.Variants)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.label(), err)
			}
			sc.FileType = typ
			v.QuantizeSeconds = time.Since(t0).Seconds()
			fh, err := hashFile(path)
			if err != nil {
				return nil, err
			}
			v.SHA256 = fh.SHA256
			sc.Output, sc.Seconds = fh.SHA256, v.QuantizeSeconds
			if sc.FileType != "" {
				v.Type = sc.FileType
			}
			if err := writeSidecar(path, sc); err != nil {
				return nil, err
			}
		}
		fi, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		v.SizeBytes = fi.Size()
		r.Variants = append(r.Variants, v)
	}

	// Parameters and bits per weight; the base is the most precise variant.
	models := make([]*eval.Model, len(r.Variants))
	defer func() {
		for _, m := range models {
			if m != nil {
				m.Close()
			}
		}
	}()
	baseIdx := 0
	for i := range r.Variants {
		v := &r.Variants[i]
		m, err := eval.Load(filepath.Join(cfg.OutDir, v.File), eval.Options{Threads: cfg.Threads})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v.DisplayName(), err)
		}
		models[i] = m
		v.NParams = m.NParams()
		if v.NParams > 0 {
			v.BPW = 8 * float64(m.SizeBytes()) / float64(v.NParams)
		}
		b := &r.Variants[baseIdx]
		if v.BPW > b.BPW || (v.BPW == b.BPW && precisionRank[v.Type] > precisionRank[b.Type]) {
			baseIdx = i
		}
	}
	base := &r.Variants[baseIdx]
	base.IsBase, base.SameTop = true, 1
	r.Base = base.Type
	baseModel := models[baseIdx]

	toks, popt, err := perplexity.EngineText(baseModel, cfg.Text)
	if err != nil {
		return nil, err
	}
	r.Provenance.Text.Tokens = len(toks)
	nCtx := cfg.NCtx
	if nCtx <= 0 {
		nCtx = min(DefaultMaxNCtx, baseModel.Hparams.NCtxTrain)
		if nCtx <= 0 {
			nCtx = DefaultMaxNCtx
		}
	}
	popt.NCtx, popt.NBatch, popt.MaxChunks, popt.Threads = nCtx, cfg.NBatch, cfg.Chunks, cfg.Threads
	nChunks := perplexity.NumChunks(len(toks), nCtx, cfg.Chunks)
	r.Settings = Settings{Method: Method, NCtx: nCtx, NBatch: cfg.NBatch, Chunks: nChunks,
		TokensScored: nChunks * (nCtx - 1 - nCtx/2), BenchPrompt: cfg.BenchPrompt, BenchGen: cfg.BenchGen,
		BenchRepeats: cfg.BenchReps, KVCache: strings.ToLower(baseModel.KVType().String())}
	if train := baseModel.Hparams.NCtxTrain; train > 0 && nCtx > train {
		w := fmt.Sprintf("n_ctx %d is larger than the model's training context of %d: positions past %d were never trained (llama.cpp: possible training context overflow)", nCtx, train, train)
		r.Settings.Warnings = append(r.Settings.Warnings, w)
		cfg.logf("warning: %s", w)
	}
	for i, m := range models {
		if m.NVocab() != baseModel.NVocab() {
			return nil, fmt.Errorf("%s has a vocabulary of %d, the base %s %d", r.Variants[i].Type, m.NVocab(), base.Type, baseModel.NVocab())
		}
	}

	// The base run writes the log-probabilities the others compare with.
	baseFile, err := os.CreateTemp(cfg.OutDir, ".kld-base-*.logits")
	if err != nil {
		return nil, err
	}
	defer os.Remove(baseFile.Name())
	cfg.logf("%s (base): perplexity over %d chunks of %d tokens", base.Type, nChunks, nCtx)
	bopt := popt
	bopt.BaseOut = baseFile
	res, err := perplexity.Perplexity(ctx, perplexity.FromEngine(baseModel), toks, bopt)
	if cerr := baseFile.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", base.Type, err)
	}
	base.PPL, base.PPLStderr, base.EvalTokensPerSec = res.PPL, res.PPLStderr, res.TokensPerSecond

	for i := range r.Variants {
		v := &r.Variants[i]
		if i != baseIdx {
			cfg.logf("%s: KL-divergence against %s", v.DisplayName(), base.Type)
			br, err := perplexity.OpenBase(baseFile.Name())
			if err != nil {
				return nil, err
			}
			kopt := popt
			res, err := perplexity.KLDivergence(ctx, perplexity.FromEngine(models[i]), br, kopt)
			br.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", v.DisplayName(), err)
			}
			v.PPL, v.PPLStderr, v.EvalTokensPerSec = res.PPL, res.PPLStderr, res.TokensPerSecond
			if res.KLD != nil {
				v.KLD = res.KLD
				v.KLDMean, v.KLDP99, v.SameTop = res.KLD.KLD, res.KLD.KLD99, res.KLD.SameTop
			}
		}
		v.DeltaPPLPct = 100 * (v.PPL/base.PPL - 1)
		if cfg.BenchReps > 0 {
			cfg.logf("%s: speed (pp%d, tg%d, %d repetitions)", v.DisplayName(), cfg.BenchPrompt, cfg.BenchGen, cfg.BenchReps)
			b, err := bench(ctx, models[i], cfg.BenchPrompt, cfg.BenchGen, cfg.BenchReps, popt.BOS, popt.AddBOS)
			if err != nil {
				return nil, fmt.Errorf("%s: bench: %w", v.DisplayName(), err)
			}
			v.PPTokensPerSec, v.PPTokensPerSecSD, v.TGTokensPerSec, v.TGTokensPerSecSD = b.pp, b.ppSD, b.tg, b.tgSD
		}
	}
	r.setBeats()
	return r, nil
}

func (s variantSpec) recipe(hf bool, imat, cal FileHash, cfg Config) string {
	var r string
	switch {
	case s.outType != "":
		return "convert --outtype " + s.outType
	case hf:
		r = "convert --outtype f32, quantize"
	default:
		r = "quantize"
	}
	if s.target != nil {
		t := s.target
		switch {
		case t.bpw > 0:
			r += fmt.Sprintf(" --target-bpw %g", t.bpw)
		case t.size > 0:
			r += fmt.Sprintf(" --target-size %d", t.size)
		default:
			r += " --target-size (size of " + t.preset.Name + ")"
		}
		if cal.SHA256 != "" {
			r += fmt.Sprintf(" --calibration %s (sha256 %s, %d×%d)", cal.Name, short(cal.SHA256), cfg.CalibrationChunks, cfg.CalibrationCtx)
		}
	} else {
		r += " " + s.typ
	}
	if s.imatrix {
		r += fmt.Sprintf(" --imatrix %s (sha256 %s)", imat.Name, short(imat.SHA256))
	}
	return r
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// fileLabel makes a variant label safe in a file name.
func fileLabel(l string) string {
	return strings.NewReplacer("+", "-", "@", "-", "/", "_").Replace(l)
}

// produce writes one variant's GGUF file and returns the preset that
// labels it (a size target's choice is named after its main type).
func produce(ctx context.Context, cfg Config, s variantSpec, hf bool, path string, imat *quant.Imatrix, made []Variant) (string, error) {
	var m *formats.Model
	if hf {
		outType := s.outType
		if outType == "" {
			outType = "f32"
		}
		res, err := convert.Convert(cfg.Source, convert.Options{OutType: outType, Encoder: tokenizer.EncodeHF})
		if err != nil {
			return "", err
		}
		defer res.Close()
		m = res.Model
	} else {
		f, err := gguf.Open(cfg.Source)
		if err != nil {
			return "", err
		}
		defer f.Close()
		m = f.Model()
	}
	typ := s.typ
	if s.outType == "" {
		opts := quant.Options{Preset: s.preset, Threads: cfg.Threads, Context: ctx}
		if s.imatrix {
			opts.Imatrix, opts.ImatrixFile, opts.ImatrixDataset = imat.Weights, baseName(cfg.Imatrix), imat.Dataset
			opts.ImatrixChunks = int(max(imat.Chunks, 0))
		}
		var planned *formats.Model
		var err error
		if s.target != nil {
			if planned, typ, err = planTarget(ctx, cfg, s, hf, m, opts, made); err != nil {
				return "", err
			}
		} else if planned, _, err = quant.Plan(m, opts); err != nil {
			return "", err
		}
		m = planned
	}
	return typ, gguf.WriteFile(ctx, path, m, gguf.WriteOptions{Codec: quant.Codec{}, Threads: cfg.Threads, Overwrite: true})
}

// planTarget plans an auto@ variant with target.Plan. The model is measured
// from the source GGUF, or from a Hugging Face source's most precise
// variant already made (f32, f16 or bf16).
func planTarget(ctx context.Context, cfg Config, s variantSpec, hf bool, m *formats.Model, opts quant.Options, made []Variant) (*formats.Model, string, error) {
	spec := target.Spec{BPW: s.target.bpw, Size: s.target.size, Input: cfg.Source, Calibration: cfg.Calibration,
		Chunks: cfg.CalibrationChunks, NCtx: cfg.CalibrationCtx, Threads: cfg.Threads}
	if s.target.preset != nil {
		popts := opts
		popts.Preset = *s.target.preset
		planned, _, err := quant.Plan(m, popts)
		if err != nil {
			return nil, "", fmt.Errorf("size of %s: %w", s.target.preset.Name, err)
		}
		if spec.Size, err = gguf.FileSize(planned); err != nil {
			return nil, "", err
		}
	}
	if hf && cfg.Calibration != "" {
		best := -1
		for _, rank := range []string{"F32", "F16", "BF16"} {
			for i, v := range made {
				if best < 0 && v.Type == rank && v.Imatrix == "" {
					best = i
				}
			}
		}
		if best < 0 {
			return nil, "", errors.New("measuring a Hugging Face source needs its converted model: add f16 (or f32) to --types, or give a GGUF source")
		}
		spec.Input = filepath.Join(cfg.OutDir, made[best].File)
	}
	planned, _, res, err := target.Plan(ctx, m, opts, spec)
	if err != nil {
		return nil, "", err
	}
	cfg.logf("  %s: %d tensors chosen by %s sensitivity, estimated KL-divergence %.4g, %d bytes", s.label(), len(res.Choice), res.Method, res.EstKLD, res.FileBytes)
	return planned, res.Preset.Name, nil
}

// sidecar records how a variant file was made, so a later run can reuse it.
type sidecar struct {
	Schema  string `json:"schema"`
	Source  string `json:"source_sha256"`
	Type    string `json:"type"`
	Recipe  string `json:"recipe"`
	Version string `json:"llqt_version"`
	Commit  string `json:"llqt_commit"`
	Output  string `json:"output_sha256"`
	// FileType is the preset a size target's file is labelled with.
	FileType string  `json:"file_type,omitempty"`
	Seconds  float64 `json:"seconds"`
}

const sidecarSchema = "llqt.variant/v1"

func sidecarPath(path string) string { return path + ".llqt.json" }

func writeSidecar(path string, sc sidecar) error {
	b, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(sidecarPath(path), append(b, '\n'), true)
}

// reusable reports whether path exists, was made from the same source by
// the same recipe and llqt build, and still has the bytes recorded.
func reusable(path string, want sidecar) (sidecar, bool) {
	b, err := os.ReadFile(sidecarPath(path))
	if err != nil {
		return sidecar{}, false
	}
	var got sidecar
	dec := json.NewDecoder(bytes.NewReader(b))
	if dec.Decode(&got) != nil {
		return sidecar{}, false
	}
	if got.Schema != want.Schema || got.Source != want.Source || got.Type != want.Type || got.Recipe != want.Recipe ||
		got.Version != want.Version || got.Commit != want.Commit {
		return sidecar{}, false
	}
	fh, err := hashFile(path)
	if err != nil || fh.SHA256 != got.Output {
		return sidecar{}, false
	}
	return got, true
}

// WriteAll writes report.md, report.json, report.csv, size_vs_quality.png
// and size_vs_quality.svg into dir, each atomically.
func WriteAll(dir string, r *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var md, js, cs, png, svg bytes.Buffer
	for _, w := range []struct {
		buf *bytes.Buffer
		fn  func(io.Writer, *Report) error
	}{{&md, WriteMarkdown}, {&js, WriteJSON}, {&cs, WriteCSV}} {
		if err := w.fn(w.buf, r); err != nil {
			return err
		}
	}
	if err := WritePlots(r, &png, &svg); err != nil {
		return err
	}
	for name, b := range map[string]*bytes.Buffer{"report.md": &md, "report.json": &js, "report.csv": &cs,
		"size_vs_quality.png": &png, "size_vs_quality.svg": &svg} {
		if err := atomicfile.WriteFile(filepath.Join(dir, name), b.Bytes(), true); err != nil {
			return err
		}
	}
	return nil
}

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
	"strings"
	"time"

	"github.com/llqt/llqt/convert"
	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/eval/tokenizer"
	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/atomicfile"
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
	// Version and Commit identify the llqt build in the provenance.
	Version, Commit string
	// Log receives one line per step; nil is silent.
	Log io.Writer
}

// variantSpec is one requested variant and how to make it.
type variantSpec struct {
	name    string // as asked for, lower case
	typ     string // llama.cpp's spelling
	outType string // convert --outtype, when converted directly
	preset  quant.Preset
}

// precisionRank orders the lossless and half-precision types above any
// quantization when bits per weight tie.
var precisionRank = map[string]int{"F32": 3, "F16": 2, "BF16": 1}

func parseTypes(types []string, hf bool) ([]variantSpec, error) {
	var specs []variantSpec
	seen := map[string]bool{}
	for _, t := range types {
		name := strings.ToLower(strings.TrimSpace(t))
		if name == "" {
			continue
		}
		p, err := quant.ParsePreset(name)
		if err != nil {
			return nil, err
		}
		if p.Copy {
			return nil, fmt.Errorf("%s is not a variant (it copies the input)", t)
		}
		if !p.Supported() {
			return nil, fmt.Errorf("%s needs block formats llqt does not implement yet", p.Name)
		}
		if p.NeedsImatrix {
			return nil, fmt.Errorf("%s needs an importance matrix; a report measures plain quantizations", p.Name)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("variant %s given twice", p.Name)
		}
		seen[p.Name] = true
		s := variantSpec{name: name, typ: p.Name, preset: p}
		if hf && slices.Contains(convert.OutTypes, strings.ToLower(p.Name)) && strings.ToLower(p.Name) != "auto" {
			s.outType = strings.ToLower(p.Name)
		}
		specs = append(specs, s)
	}
	if len(specs) == 0 {
		return nil, errors.New("no variants: give --types, e.g. f16,q8_0,q4_k_m")
	}
	return specs, nil
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
	specs, err := parseTypes(cfg.Types, hf)
	if err != nil {
		return nil, err
	}
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
		v := Variant{Name: s.name, Type: s.typ, File: fmt.Sprintf("%s-%s.gguf", stem, s.typ)}
		path := filepath.Join(cfg.OutDir, v.File)
		sc := sidecar{Schema: sidecarSchema, Source: src.SHA256, Type: s.typ, Recipe: s.recipe(hf),
			Version: cfg.Version, Commit: cfg.Commit}
		if old, ok := reusable(path, sc); ok {
			v.Reused, v.QuantizeSeconds, v.SHA256 = true, old.Seconds, old.Output
			cfg.logf("[%d/%d] %s: reusing %s (same source, recipe and llqt build)", i+1, len(specs), s.typ, path)
		} else {
			cfg.logf("[%d/%d] %s: %s", i+1, len(specs), s.typ, sc.Recipe)
			t0 := time.Now()
			if err := produce(ctx, cfg, s, hf, path); err != nil {
				return nil, fmt.Errorf("%s: %w", s.typ, err)
			}
			v.QuantizeSeconds = time.Since(t0).Seconds()
			fh, err := hashFile(path)
			if err != nil {
				return nil, err
			}
			v.SHA256 = fh.SHA256
			sc.Output, sc.Seconds = fh.SHA256, v.QuantizeSeconds
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
			return nil, fmt.Errorf("%s: %w", v.Type, err)
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
			cfg.logf("%s: KL-divergence against %s", v.Type, base.Type)
			br, err := perplexity.OpenBase(baseFile.Name())
			if err != nil {
				return nil, err
			}
			kopt := popt
			res, err := perplexity.KLDivergence(ctx, perplexity.FromEngine(models[i]), br, kopt)
			br.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", v.Type, err)
			}
			v.PPL, v.PPLStderr, v.EvalTokensPerSec = res.PPL, res.PPLStderr, res.TokensPerSecond
			if res.KLD != nil {
				v.KLD = res.KLD
				v.KLDMean, v.KLDP99, v.SameTop = res.KLD.KLD, res.KLD.KLD99, res.KLD.SameTop
			}
		}
		v.DeltaPPLPct = 100 * (v.PPL/base.PPL - 1)
		if cfg.BenchReps > 0 {
			cfg.logf("%s: speed (pp%d, tg%d, %d repetitions)", v.Type, cfg.BenchPrompt, cfg.BenchGen, cfg.BenchReps)
			b, err := bench(ctx, models[i], cfg.BenchPrompt, cfg.BenchGen, cfg.BenchReps, popt.BOS, popt.AddBOS)
			if err != nil {
				return nil, fmt.Errorf("%s: bench: %w", v.Type, err)
			}
			v.PPTokensPerSec, v.PPTokensPerSecSD, v.TGTokensPerSec, v.TGTokensPerSecSD = b.pp, b.ppSD, b.tg, b.tgSD
		}
	}
	return r, nil
}

func (s variantSpec) recipe(hf bool) string {
	switch {
	case s.outType != "":
		return "convert --outtype " + s.outType
	case hf:
		return "convert --outtype f32, quantize " + s.typ
	}
	return "quantize " + s.typ
}

// produce writes one variant's GGUF file.
func produce(ctx context.Context, cfg Config, s variantSpec, hf bool, path string) error {
	var m *formats.Model
	if hf {
		outType := s.outType
		if outType == "" {
			outType = "f32"
		}
		res, err := convert.Convert(cfg.Source, convert.Options{OutType: outType, Encoder: tokenizer.EncodeHF})
		if err != nil {
			return err
		}
		defer res.Close()
		m = res.Model
	} else {
		f, err := gguf.Open(cfg.Source)
		if err != nil {
			return err
		}
		defer f.Close()
		m = f.Model()
	}
	if s.outType == "" {
		planned, _, err := quant.Plan(m, quant.Options{Preset: s.preset, Threads: cfg.Threads, Context: ctx})
		if err != nil {
			return err
		}
		m = planned
	}
	return gguf.WriteFile(ctx, path, m, gguf.WriteOptions{Codec: quant.Codec{}, Threads: cfg.Threads, Overwrite: true})
}

// sidecar records how a variant file was made, so a later run can reuse it.
type sidecar struct {
	Schema  string  `json:"schema"`
	Source  string  `json:"source_sha256"`
	Type    string  `json:"type"`
	Recipe  string  `json:"recipe"`
	Version string  `json:"llqt_version"`
	Commit  string  `json:"llqt_commit"`
	Output  string  `json:"output_sha256"`
	Seconds float64 `json:"seconds"`
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

// Package report builds llqt's quantization report: every variant of a
// model (converted and quantized with llqt's own packages) measured on the
// same text for size, perplexity, KL-divergence against the highest-precision
// variant, and speed, written as report.md, report.json, report.csv and a
// size-versus-quality plot. It also parses quality gates for CI and merges
// the per-variant reports of a CI matrix.
//
// report.json's schema (Schema = "llqt.report/v1") is the Report type: field
// names are its JSON tags; probabilities are fractions, ΔPPL is in percent,
// sizes in bytes, rates in tokens per second.
package report

import (
	"slices"
	"strings"

	"github.com/llqt/llqt/perplexity"
)

// Schema names the report.json format; bump it on incompatible changes.
const Schema = "llqt.report/v1"

// Report is report.json.
type Report struct {
	Schema     string     `json:"schema"`
	Provenance Provenance `json:"provenance"`
	Settings   Settings   `json:"settings"`
	// Base is the name of the variant the others are compared with.
	Base     string    `json:"base"`
	Variants []Variant `json:"variants"`
	// MergedFrom holds the provenance of each part when this report was
	// made by merging the reports of a CI matrix.
	MergedFrom []Provenance `json:"merged_from,omitempty"`
}

// Provenance says what produced the report, from what, where and when.
type Provenance struct {
	Tool      string `json:"tool"` // "llqt"
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
	Date      string `json:"date"` // RFC 3339, UTC
	Source    Input  `json:"source"`
	Text      Text   `json:"text"`
	CPU       CPU    `json:"cpu"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	Threads   int    `json:"threads"`
}

// Input is a model source: a GGUF file or a Hugging Face directory, with the
// sha256 of every file in it and one digest over that list.
type Input struct {
	Path   string     `json:"path"`
	Kind   string     `json:"kind"`   // "hf" or "gguf"
	SHA256 string     `json:"sha256"` // of the file, or of the directory's "sha256  name\n" lines
	Files  []FileHash `json:"files,omitempty"`
}

// FileHash is one input file.
type FileHash struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Text is the evaluation text.
type Text struct {
	Path   string `json:"path"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	Tokens int    `json:"tokens"` // with BOS, as the base model tokenizes it
}

// CPU is the machine's processor.
type CPU struct {
	Model string   `json:"model"`
	Cores int      `json:"logical_cores"`
	Flags []string `json:"flags"` // the SIMD features the kernels may use
	// Kernels is the kernel set the figures were measured with
	// (kernels.Active: "amx", "avx512-vnni", "avx2" or "purego").
	Kernels string `json:"kernels"`
}

// Settings are the measurement settings shared by every variant.
type Settings struct {
	Method       string `json:"method"`
	NCtx         int    `json:"n_ctx"`
	NBatch       int    `json:"n_batch"`
	Chunks       int    `json:"chunks"`
	TokensScored int    `json:"tokens_scored"`
	BenchPrompt  int    `json:"bench_prompt_tokens"`
	BenchGen     int    `json:"bench_gen_tokens"`
	BenchRepeats int    `json:"bench_repetitions"`
	KVCache      string `json:"kv_cache"`
	// Warnings are the run's warnings, e.g. n_ctx beyond the model's
	// training context.
	Warnings []string `json:"warnings,omitempty"`
}

// Variant is one model variant's measurements.
type Variant struct {
	Name string `json:"name"` // as asked for: q4_k_m, q4_k_m+imat, auto@4.5bpw
	Type string `json:"type"` // llama.cpp's preset name (for a size target, the preset its file is labelled with): Q4_K_M
	// Label names the variant in tables and plots: Type, Type+"+imat" or
	// "auto@…".
	Label string `json:"label,omitempty"`
	// Imatrix is the importance matrix file it was quantized with, if any;
	// Target the size target that chose its types, with the calibration
	// text its sensitivities were measured on (none: the proxy).
	Imatrix     string `json:"imatrix,omitempty"`
	Target      string `json:"target,omitempty"`
	Calibration string `json:"calibration,omitempty"`
	// Beats lists the preset variants (with or without the importance
	// matrix) that are at least as large (within 1%) and have a higher
	// mean KLD, largest first.
	Beats  []string `json:"beats,omitempty"`
	File   string   `json:"file"` // path relative to the report directory
	SHA256 string   `json:"sha256"`
	// SizeBytes is the GGUF file's size; BPW the bits per weight of its
	// tensor data (8 · tensor bytes / parameters).
	SizeBytes int64   `json:"size_bytes"`
	NParams   uint64  `json:"n_params"`
	BPW       float64 `json:"bpw"`
	IsBase    bool    `json:"is_base"`

	PPL       float64 `json:"ppl"`
	PPLStderr float64 `json:"ppl_stderr"`
	// DeltaPPLPct is 100·(PPL/PPL(base) − 1).
	DeltaPPLPct float64 `json:"delta_ppl_pct"`
	// KLDMean, KLDP99 and SameTop (a fraction) come from the KL run against
	// the base; 0, 0 and 1 for the base itself.
	KLDMean float64 `json:"kld_mean"`
	KLDP99  float64 `json:"kld_p99"`
	SameTop float64 `json:"same_top_p"`
	// KLD holds every statistic of the KL run (absent for the base).
	KLD *perplexity.KLDStats `json:"kld,omitempty"`

	// QuantizeSeconds is the time to produce the file (conversion and
	// quantization); Reused says the file was already there with matching
	// provenance, and the time is from when it was made.
	QuantizeSeconds float64 `json:"quantize_seconds"`
	Reused          bool    `json:"reused"`

	// Prompt processing and generation rates, mean and standard deviation
	// over the repetitions.
	PPTokensPerSec   float64 `json:"pp_tokens_per_second"`
	PPTokensPerSecSD float64 `json:"pp_tokens_per_second_sd"`
	TGTokensPerSec   float64 `json:"tg_tokens_per_second"`
	TGTokensPerSecSD float64 `json:"tg_tokens_per_second_sd"`
	EvalTokensPerSec float64 `json:"eval_tokens_per_second"`
}

// sortedBySize returns the variants from smallest to largest file.
func (r *Report) sortedBySize() []Variant {
	v := slices.Clone(r.Variants)
	slices.SortStableFunc(v, func(a, b Variant) int {
		if a.SizeBytes != b.SizeBytes {
			if a.SizeBytes < b.SizeBytes {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return v
}

// Variant returns the variant called name (case-insensitive): its name as
// asked for, its label, or else its preset name.
func (r *Report) Variant(name string) (*Variant, bool) {
	for _, key := range []func(v *Variant) string{
		func(v *Variant) string { return v.Name },
		func(v *Variant) string { return v.DisplayName() },
		func(v *Variant) string { return v.Type },
	} {
		for i := range r.Variants {
			if strings.EqualFold(key(&r.Variants[i]), name) {
				return &r.Variants[i], true
			}
		}
	}
	return nil, false
}

// DisplayName is the variant's label, or its type in reports written before
// labels existed.
func (v *Variant) DisplayName() string {
	if v.Label != "" {
		return v.Label
	}
	return v.Type
}

// isPreset says the variant is one of llama-quantize's presets (with or
// without the importance matrix), not a size target.
func (v *Variant) isPreset() bool { return v.Target == "" }

// sameSize is the relative size difference within which two files count as
// the same size (the size target's own tolerance): an importance-matrix
// file is a few hundred bytes larger than the plain one for its metadata.
const sameSize = 0.01

// setBeats fills each non-base variant's Beats: the preset variants at
// least as large (within sameSize) whose mean KLD is higher, largest first. This is the
// frontier's reading: a variant that beats a larger preset gives more
// quality per byte.
func (r *Report) setBeats() {
	for i := range r.Variants {
		v := &r.Variants[i]
		v.Beats = nil
		if v.IsBase || v.KLD == nil {
			continue
		}
		var beaten []Variant
		for j, w := range r.Variants {
			if j == i || w.IsBase || w.KLD == nil || !w.isPreset() {
				continue
			}
			if float64(w.SizeBytes) >= (1-sameSize)*float64(v.SizeBytes) && w.KLDMean > v.KLDMean {
				beaten = append(beaten, w)
			}
		}
		slices.SortStableFunc(beaten, func(a, b Variant) int { return cmpInt64(b.SizeBytes, a.SizeBytes) })
		for _, w := range beaten {
			v.Beats = append(v.Beats, w.DisplayName())
		}
	}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

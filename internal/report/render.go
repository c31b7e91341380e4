package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// mib formats a byte count in MiB.
// notMeasured stands in the table for a number that was not measured (or
// came out non-finite), so that every printed number is a real one.
const notMeasured = "not measured"

// speed is a tokens/s cell, or notMeasured when the speed test was skipped.
func speed(ts, sd float64, reps int) string {
	if reps <= 0 || !(ts > 0) || math.IsInf(ts, 0) || math.IsNaN(sd) || math.IsInf(sd, 0) {
		return notMeasured
	}
	return fmt.Sprintf("%.1f ± %.1f", ts, sd)
}

func mib(b int64) string { return fmt.Sprintf("%.2f", float64(b)/(1<<20)) }

// WriteMarkdown writes report.md: the settings and provenance, then one
// table row per variant, smallest file first.
func WriteMarkdown(w io.Writer, r *Report) error {
	var b bytes.Buffer
	p := r.Provenance
	s := r.Settings
	fmt.Fprintf(&b, "# Quantization report: %s\n\n", p.Source.Path)
	fmt.Fprintf(&b, "- Source: `%s` (%s, sha256 `%s`)\n", p.Source.Path, p.Source.Kind, short(p.Source.SHA256))
	fmt.Fprintf(&b, "- Text: `%s` (%d bytes, %d tokens, sha256 `%s`)\n", p.Text.Path, p.Text.Bytes, p.Text.Tokens, short(p.Text.SHA256))
	fmt.Fprintf(&b, "- Method: %s; n_ctx %d, %d chunks, %d tokens scored per variant\n", s.Method, s.NCtx, s.Chunks, s.TokensScored)
	if s.BenchRepeats > 0 {
		fmt.Fprintf(&b, "- KL-divergence base: %s; speed: pp%d and tg%d, %d repetitions after a warm-up, KV cache %s\n",
			r.Base, s.BenchPrompt, s.BenchGen, s.BenchRepeats, s.KVCache)
	} else {
		fmt.Fprintf(&b, "- KL-divergence base: %s; speed: not measured; KV cache %s\n", r.Base, s.KVCache)
	}
	kset := p.CPU.Kernels
	if kset == "" {
		kset = "not recorded" // reports written before the field existed
	}
	fmt.Fprintf(&b, "- Machine: %s, %d logical cores, %d threads, kernels %s, %s/%s\n", p.CPU.Model, p.CPU.Cores, p.Threads, kset, p.OS, p.Arch)
	fmt.Fprintf(&b, "- llqt %s (commit %s, %s), %s\n", p.Version, short(p.Commit), p.GoVersion, p.Date)
	if len(r.MergedFrom) > 0 {
		fmt.Fprintf(&b, "- Merged from %d reports\n", len(r.MergedFrom))
	}
	for _, w := range s.Warnings {
		fmt.Fprintf(&b, "- **Warning:** %s\n", w)
	}
	b.WriteString("\n")

	header := []string{"Variant", "Size MiB", "BPW", "PPL", "ΔPPL %", "Mean KLD", "p99 KLD", "Same top p %", "Quantize s", "pp t/s", "tg t/s", "Beats"}
	var rows [][]string
	for _, v := range r.sortedBySize() {
		name := v.DisplayName()
		if v.IsBase {
			name += " (base)"
		}
		kld, p99, top := fmt.Sprintf("%.6f", v.KLDMean), fmt.Sprintf("%.6f", v.KLDP99), fmt.Sprintf("%.2f", 100*v.SameTop)
		if v.IsBase {
			kld, p99, top = "—", "—", "—"
		}
		quant := fmt.Sprintf("%.2f", v.QuantizeSeconds)
		if v.Reused {
			quant += " (reused)"
		}
		rows = append(rows, []string{
			name, mib(v.SizeBytes), fmt.Sprintf("%.2f", v.BPW),
			fmt.Sprintf("%.4f ± %.4f", v.PPL, v.PPLStderr), fmt.Sprintf("%+.3f", v.DeltaPPLPct),
			kld, p99, top, quant,
			speed(v.PPTokensPerSec, v.PPTokensPerSecSD, s.BenchRepeats),
			speed(v.TGTokensPerSec, v.TGTokensPerSecSD, s.BenchRepeats),
			beatsCell(v.Beats),
		})
		for i, c := range rows[len(rows)-1] {
			if strings.Contains(c, "NaN") || strings.Contains(c, "Inf") {
				rows[len(rows)-1][i] = notMeasured
			}
		}
	}
	align := tw.Alignment{tw.AlignLeft}
	for range header[1:] {
		align = append(align, tw.AlignRight)
	}
	t := tablewriter.NewTable(&b,
		tablewriter.WithRenderer(renderer.NewMarkdown()),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithAlignment(align),
	)
	t.Header(header)
	if err := t.Bulk(rows); err != nil {
		return err
	}
	if err := t.Render(); err != nil {
		return err
	}
	b.WriteString("\nBeats: the largest preset (with or without the importance matrix) that is at least as large (within 1%) and has a higher mean KLD.\n")
	for _, v := range r.sortedBySize() {
		if v.Imatrix != "" || v.Target != "" {
			how := "importance matrix " + v.Imatrix
			if v.Target != "" {
				how = "size target " + v.Target + ", per-tensor types chosen by "
				if v.Calibration != "" {
					how += "the KL-divergence each tensor adds on " + v.Calibration
				} else {
					how += "the weighted-error proxy"
				}
				if v.Imatrix != "" {
					how += ", importance matrix " + v.Imatrix
				}
			}
			fmt.Fprintf(&b, "- %s: %s\n", v.DisplayName(), how)
		}
	}
	b.WriteString("\n![size vs quality](size_vs_quality.svg)\n")
	_, err := w.Write(b.Bytes())
	return err
}

// beatsCell names the largest preset beaten and how many more.
func beatsCell(beats []string) string {
	switch len(beats) {
	case 0:
		return "—"
	case 1:
		return beats[0]
	}
	return fmt.Sprintf("%s (+%d more)", beats[0], len(beats)-1)
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// csvHeader are report.csv's columns.
var csvHeader = []string{"name", "type", "file", "sha256", "size_bytes", "n_params", "bpw", "is_base",
	"ppl", "ppl_stderr", "delta_ppl_pct", "kld_mean", "kld_p99", "same_top_p",
	"quantize_seconds", "reused", "pp_tokens_per_second", "pp_tokens_per_second_sd",
	"tg_tokens_per_second", "tg_tokens_per_second_sd", "label", "imatrix", "target", "beats"}

// WriteCSV writes report.csv, one row per variant, smallest first, with
// full-precision numbers.
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	for _, v := range r.sortedBySize() {
		if err := cw.Write([]string{v.Name, v.Type, v.File, v.SHA256, strconv.FormatInt(v.SizeBytes, 10),
			strconv.FormatUint(v.NParams, 10), f(v.BPW), strconv.FormatBool(v.IsBase),
			f(v.PPL), f(v.PPLStderr), f(v.DeltaPPLPct), f(v.KLDMean), f(v.KLDP99), f(v.SameTop),
			f(v.QuantizeSeconds), strconv.FormatBool(v.Reused), f(v.PPTokensPerSec), f(v.PPTokensPerSecSD),
			f(v.TGTokensPerSec), f(v.TGTokensPerSecSD), v.DisplayName(), v.Imatrix, v.Target, strings.Join(v.Beats, ";")}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes report.json.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadJSON parses a report.json, checking its schema.
func ReadJSON(data []byte, name string) (*Report, error) {
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("%s: schema %q, want %q (not an llqt report, or from an incompatible version)", name, r.Schema, Schema)
	}
	return &r, nil
}

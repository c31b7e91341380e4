package report

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Merge combines the reports of a CI matrix (each job measuring some
// variants against the same base) into one. The parts must agree on the
// source, the text and the method settings; a variant measured by several
// parts (typically the base, which every job needs) is taken from the first,
// and its PPL must agree across parts to 0.1%. ΔPPL is recomputed against the
// merged base.
func Merge(parts []*Report, names []string) (*Report, error) {
	if len(parts) == 0 {
		return nil, errors.New("merge: no reports given")
	}
	first := parts[0]
	out := &Report{Schema: Schema, Provenance: first.Provenance, Settings: first.Settings, Base: first.Base}
	seen := map[string]int{}
	for i, p := range parts {
		name := names[i]
		if err := compatible(first, p); err != nil {
			return nil, fmt.Errorf("merge: %s and %s: %w", names[0], name, err)
		}
		out.MergedFrom = append(out.MergedFrom, p.Provenance)
		if p.Settings.TokensScored != first.Settings.TokensScored {
			return nil, fmt.Errorf("merge: %s scored %d tokens, %s %d", name, p.Settings.TokensScored, names[0], first.Settings.TokensScored)
		}
		for _, v := range p.Variants {
			key := strings.ToLower(v.DisplayName())
			if j, ok := seen[key]; ok {
				prev := out.Variants[j]
				if math.Abs(prev.PPL-v.PPL) > 1e-3*prev.PPL {
					return nil, fmt.Errorf("merge: %s has PPL %.4f in %s but %.4f in an earlier report: the runs are not comparable",
						v.DisplayName(), v.PPL, name, prev.PPL)
				}
				continue
			}
			seen[key] = len(out.Variants)
			out.Variants = append(out.Variants, v)
		}
	}
	base, ok := out.Variant(out.Base)
	if !ok || !base.IsBase {
		return nil, fmt.Errorf("merge: the base %s is missing from the reports", out.Base)
	}
	for i := range out.Variants {
		v := &out.Variants[i]
		v.DeltaPPLPct = 100 * (v.PPL/base.PPL - 1)
	}
	out.setBeats()
	return out, nil
}

// compatible says why two reports cannot be merged, or nil.
func compatible(a, b *Report) error {
	switch {
	case b.Schema != Schema:
		return fmt.Errorf("schema %q", b.Schema)
	case a.Provenance.Source.SHA256 != b.Provenance.Source.SHA256:
		return fmt.Errorf("different source models (sha256 %s vs %s)", short(a.Provenance.Source.SHA256), short(b.Provenance.Source.SHA256))
	case a.Provenance.Text.SHA256 != b.Provenance.Text.SHA256:
		return fmt.Errorf("different texts (sha256 %s vs %s)", short(a.Provenance.Text.SHA256), short(b.Provenance.Text.SHA256))
	case a.Settings.NCtx != b.Settings.NCtx || a.Settings.Chunks != b.Settings.Chunks:
		return fmt.Errorf("different settings (n_ctx %d/%d, chunks %d/%d)", a.Settings.NCtx, b.Settings.NCtx, a.Settings.Chunks, b.Settings.Chunks)
	case !strings.EqualFold(a.Base, b.Base):
		return fmt.Errorf("different KL bases (%s vs %s)", a.Base, b.Base)
	}
	return nil
}

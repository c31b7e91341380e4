package report

import (
	"fmt"
	"strconv"
	"strings"
)

// A gate spec lists, per variant, conditions its measurements must meet:
//
//	q4_k_m:dppl<3%,kld<0.05;q8_0:kld<0.001,top>=99%
//
// Variants are separated by ";", conditions by ",". A condition is METRIC
// OP VALUE with OP one of < <= > >=. Metrics:
//
//	dppl   ΔPPL against the base, in percent ("3%" or "3")
//	kld    mean KL-divergence
//	kld99  99th percentile of the KL-divergence
//	top    same top p, in percent ("99%" or "99")
//	ppl    perplexity
//	size   file size in MiB
//	bpw    bits per weight
//	pp, tg prompt-processing and generation speed in tokens/s
type Gate struct {
	Variant string
	Metric  string
	Op      string
	Value   float64
	Text    string // the condition as written
}

type metric struct {
	percent bool // plain numbers and "%" values are both percent
	get     func(*Variant) float64
	unit    string
}

var metrics = map[string]metric{
	"dppl":  {percent: true, get: func(v *Variant) float64 { return v.DeltaPPLPct }, unit: "%"},
	"kld":   {get: func(v *Variant) float64 { return v.KLDMean }},
	"kld99": {get: func(v *Variant) float64 { return v.KLDP99 }},
	"top":   {percent: true, get: func(v *Variant) float64 { return 100 * v.SameTop }, unit: "%"},
	"ppl":   {get: func(v *Variant) float64 { return v.PPL }},
	"size":  {get: func(v *Variant) float64 { return float64(v.SizeBytes) / (1 << 20) }, unit: " MiB"},
	"bpw":   {get: func(v *Variant) float64 { return v.BPW }},
	"pp":    {get: func(v *Variant) float64 { return v.PPTokensPerSec }, unit: " t/s"},
	"tg":    {get: func(v *Variant) float64 { return v.TGTokensPerSec }, unit: " t/s"},
}

func metricNames() string { return "dppl, kld, kld99, top, ppl, size, bpw, pp, tg" }

// ParseGates parses a gate spec.
func ParseGates(spec string) ([]Gate, error) {
	var gates []Gate
	for _, part := range strings.Split(spec, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		variant, conds, ok := strings.Cut(part, ":")
		variant = strings.TrimSpace(variant)
		if !ok || variant == "" {
			return nil, fmt.Errorf("gate %q: want VARIANT:CONDITION[,CONDITION…], e.g. q4_k_m:dppl<3%%,kld<0.05", part)
		}
		for _, c := range strings.Split(conds, ",") {
			c = strings.TrimSpace(c)
			if c == "" {
				continue
			}
			g, err := parseCondition(c)
			if err != nil {
				return nil, fmt.Errorf("gate %s: %w", variant, err)
			}
			g.Variant = variant
			gates = append(gates, g)
		}
	}
	if len(gates) == 0 {
		return nil, fmt.Errorf("gate spec %q has no conditions", spec)
	}
	return gates, nil
}

func parseCondition(c string) (Gate, error) {
	i := strings.IndexAny(c, "<>")
	if i <= 0 {
		return Gate{}, fmt.Errorf("condition %q: want METRIC<VALUE, METRIC<=VALUE, METRIC>VALUE or METRIC>=VALUE", c)
	}
	name := strings.ToLower(strings.TrimSpace(c[:i]))
	op := c[i : i+1]
	rest := c[i+1:]
	if strings.HasPrefix(rest, "=") {
		op += "="
		rest = rest[1:]
	}
	m, ok := metrics[name]
	if !ok {
		return Gate{}, fmt.Errorf("condition %q: unknown metric %q (known: %s)", c, name, metricNames())
	}
	rest = strings.TrimSpace(rest)
	pct := strings.HasSuffix(rest, "%")
	if pct {
		if !m.percent {
			return Gate{}, fmt.Errorf("condition %q: %s is not a percentage", c, name)
		}
		rest = strings.TrimSpace(strings.TrimSuffix(rest, "%"))
	}
	v, err := strconv.ParseFloat(rest, 64)
	if err != nil {
		return Gate{}, fmt.Errorf("condition %q: %q is not a number", c, rest)
	}
	return Gate{Metric: name, Op: op, Value: v, Text: c}, nil
}

// Check returns one line per violated gate (none when all pass). A gate on
// a variant the report lacks is a violation too.
func Check(r *Report, gates []Gate) []string {
	var bad []string
	for _, g := range gates {
		v, ok := r.Variant(g.Variant)
		if !ok {
			bad = append(bad, fmt.Sprintf("gate %s:%s failed: the report has no variant %s", g.Variant, g.Text, g.Variant))
			continue
		}
		m := metrics[g.Metric]
		x := m.get(v)
		var pass bool
		switch g.Op {
		case "<":
			pass = x < g.Value
		case "<=":
			pass = x <= g.Value
		case ">":
			pass = x > g.Value
		case ">=":
			pass = x >= g.Value
		}
		if !pass {
			bad = append(bad, fmt.Sprintf("gate %s:%s failed: %s is %s%s, must be %s %s%s",
				g.Variant, g.Text, g.Metric, strconv.FormatFloat(x, 'g', 6, 64), m.unit, g.Op,
				strconv.FormatFloat(g.Value, 'g', -1, 64), m.unit))
		}
	}
	return bad
}

package report

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Plot size: two panels stacked, readable at a glance in a PR comment.
const (
	plotWidth  = 8 * vg.Inch
	plotHeight = 8 * vg.Inch
	plotDPI    = 120
)

// WritePlots draws size against quality (mean KLD above, ΔPPL below, one
// labelled point per variant) as PNG and SVG.
func WritePlots(r *Report, png, svg io.Writer) error {
	top, bottom, title, err := qualityPlots(r)
	if err != nil {
		return err
	}
	draw2 := func(c draw.Canvas) {
		// The title spans both panels; the panels share the rest.
		ts := draw.TextStyle{Color: color.Black, Font: plot.DefaultFont, Handler: plot.DefaultTextHandler, XAlign: draw.XCenter, YAlign: draw.YTop}
		ts.Font.Size = vg.Points(14)
		c.FillText(ts, vg.Point{X: c.Center().X, Y: c.Max.Y - vg.Points(8)}, title)
		body := draw.Crop(c, 0, 0, 0, -vg.Points(36))
		tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(6), PadX: vg.Points(8), PadY: vg.Points(18)}
		top.Draw(tiles.At(body, 0, 0))
		bottom.Draw(tiles.At(body, 0, 1))
	}
	img := vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(plotDPI))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	draw2(dc)
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(png); err != nil {
		return fmt.Errorf("writing PNG: %w", err)
	}
	sc := vgsvg.New(plotWidth, plotHeight)
	draw2(draw.New(sc))
	if _, err := sc.WriteTo(svg); err != nil {
		return fmt.Errorf("writing SVG: %w", err)
	}
	return nil
}

// seriesKind groups the variants into the frontier's lines: llama-quantize's
// presets, the presets with the importance matrix, and size targets.
type seriesKind struct {
	name  string
	color color.Color
	match func(v *Variant) bool
}

var seriesKinds = []seriesKind{
	{"presets", color.RGBA{R: 200, G: 40, B: 40, A: 255}, func(v *Variant) bool { return v.isPreset() && v.Imatrix == "" }},
	{"presets + imatrix", color.RGBA{R: 230, G: 140, B: 20, A: 255}, func(v *Variant) bool { return v.isPreset() && v.Imatrix != "" }},
	{"size targets (auto@)", color.RGBA{R: 30, G: 150, B: 60, A: 255}, func(v *Variant) bool { return !v.isPreset() }},
}

func qualityPlots(r *Report) (top, bottom *plot.Plot, title string, err error) {
	vs := r.sortedBySize()
	title = fmt.Sprintf("%s: size vs quality (n_ctx %d, %d tokens scored, base %s)",
		baseName(r.Provenance.Source.Path), r.Settings.NCtx, r.Settings.TokensScored, r.Base)
	top = plot.New()
	top.X.Label.Text = "file size (MiB, log scale)"
	top.Y.Label.Text = "mean KLD vs base (log)"
	bottom = plot.New()
	bottom.X.Label.Text = "file size (MiB, log scale)"
	bottom.Y.Label.Text = "ΔPPL vs base (%)"
	var allKLD, allDPPL plotter.XYs
	kinds := 0
	for _, k := range seriesKinds {
		var kld, dppl plotter.XYs
		var kldLabels, dpplLabels []string
		for i := range vs {
			v := &vs[i]
			// The base (and the lossless variants) are points of every line.
			if !v.IsBase && !k.match(v) {
				continue
			}
			x := float64(v.SizeBytes) / (1 << 20)
			dppl = append(dppl, plotter.XY{X: x, Y: v.DeltaPPLPct})
			if v.IsBase && kinds > 0 {
				dpplLabels = append(dpplLabels, "") // labelled once, with the first line
			} else {
				dpplLabels = append(dpplLabels, v.DisplayName())
			}
			if !v.IsBase && v.KLDMean > 0 {
				kld = append(kld, plotter.XY{X: x, Y: v.KLDMean})
				kldLabels = append(kldLabels, v.DisplayName())
			}
		}
		if len(kld) == 0 && (len(dppl) == 0 || k.name != seriesKinds[0].name) {
			continue // nothing of this kind (the base alone draws with the presets)
		}
		kinds++
		if len(kld) > 0 {
			if err := addPoints(top, kld, kldLabels, k.color, k.name); err != nil {
				return nil, nil, "", err
			}
		}
		if err := addPoints(bottom, dppl, dpplLabels, k.color, k.name); err != nil {
			return nil, nil, "", err
		}
		allKLD, allDPPL = append(allKLD, kld...), append(allDPPL, dppl...)
	}
	if kinds > 1 {
		for _, p := range []*plot.Plot{top, bottom} {
			p.Legend.Top = true
			p.Legend.TextStyle.Font.Size = vg.Points(10)
		}
	} else {
		top.Legend, bottom.Legend = plot.NewLegend(), plot.NewLegend() // one kind: no legend needed
	}
	if len(allKLD) > 0 {
		top.Y.Scale = plot.LogScale{}
		top.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		lo, hi := allKLD[0].Y, allKLD[0].Y
		for _, p := range allKLD {
			lo, hi = math.Min(lo, p.Y), math.Max(hi, p.Y)
		}
		top.Y.Min, top.Y.Max = lo/3, hi*3
	}
	zero := plotter.NewFunction(func(float64) float64 { return 0 })
	zero.Color = color.Gray{Y: 160}
	zero.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
	bottom.Add(zero)
	for _, p := range []*plot.Plot{top, bottom} {
		p.Add(plotter.NewGrid())
		p.X.Label.TextStyle.Font.Size = vg.Points(12)
		p.Y.Label.TextStyle.Font.Size = vg.Points(12)
		p.X.Tick.Label.Font.Size = vg.Points(10)
		p.Y.Tick.Label.Font.Size = vg.Points(10)
	}
	// Same logarithmic x range on both panels, with room for the labels.
	if len(allDPPL) > 0 {
		lo, hi := allDPPL[0].X, allDPPL[0].X
		ylo, yhi := 0.0, 0.0
		for _, p := range allDPPL {
			lo, hi = math.Min(lo, p.X), math.Max(hi, p.X)
			ylo, yhi = math.Min(ylo, p.Y), math.Max(yhi, p.Y)
		}
		for _, p := range []*plot.Plot{top, bottom} {
			p.X.Scale = plot.LogScale{}
			p.X.Tick.Marker = sizeTicks{}
			p.X.Min, p.X.Max = lo/1.4, hi*1.6
		}
		ypad := 0.12*(yhi-ylo) + 0.05
		bottom.Y.Min, bottom.Y.Max = ylo-ypad, yhi+ypad
	}
	return top, bottom, title, nil
}

// sizeTicks labels a logarithmic size axis at 1, 2, 3, 5 × 10^k.
type sizeTicks struct{}

func (sizeTicks) Ticks(min, max float64) []plot.Tick {
	var ticks []plot.Tick
	if min <= 0 || max <= min {
		return nil
	}
	for e := math.Floor(math.Log10(min)); e <= math.Ceil(math.Log10(max)); e++ {
		p := math.Pow(10, e)
		for _, m := range []float64{1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9} {
			v := m * p
			if v < min || v > max {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 3 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

func addPoints(p *plot.Plot, xys plotter.XYs, labels []string, c color.Color, legend string) error {
	s, err := plotter.NewScatter(xys)
	if err != nil {
		return err
	}
	s.GlyphStyle.Color = c
	s.GlyphStyle.Radius = vg.Points(4)
	s.GlyphStyle.Shape = draw.CircleGlyph{}
	line, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	line.Color = c
	line.Width = vg.Points(1)
	// Neighbouring points are often close: label them alternately to the
	// upper right and the lower left.
	var sides [2]plotter.XYLabels
	for i := range xys {
		sides[i%2].XYs = append(sides[i%2].XYs, xys[i])
		sides[i%2].Labels = append(sides[i%2].Labels, labels[i])
	}
	p.Add(line, s)
	p.Legend.Add(legend, line, s)
	for side, xl := range sides {
		if len(xl.XYs) == 0 {
			continue
		}
		l, err := plotter.NewLabels(xl)
		if err != nil {
			return err
		}
		for i := range l.TextStyle {
			l.TextStyle[i].Font.Size = vg.Points(10)
			if side == 0 {
				l.TextStyle[i].XAlign, l.TextStyle[i].YAlign = draw.XLeft, draw.YBottom
			} else {
				l.TextStyle[i].XAlign, l.TextStyle[i].YAlign = draw.XRight, draw.YTop
			}
		}
		if side == 0 {
			l.Offset = vg.Point{X: vg.Points(6), Y: vg.Points(2)}
		} else {
			l.Offset = vg.Point{X: -vg.Points(6), Y: -vg.Points(2)}
		}
		p.Add(l)
	}
	return nil
}
func baseName(p string) string {
	for len(p) > 1 && (p[len(p)-1] == '/' || p[len(p)-1] == '\\') {
		p = p[:len(p)-1]
	}
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' || p[i] == '\\' {
			return p[i+1:]
		}
	}
	return p
}

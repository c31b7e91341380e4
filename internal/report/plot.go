package report

import (
	"fmt"
	"image/color"
	"io"
	"math"

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
	top, bottom, err := qualityPlots(r)
	if err != nil {
		return err
	}
	draw2 := func(c draw.Canvas) {
		tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadX: vg.Points(6), PadY: vg.Points(16)}
		canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, c)
		top.Draw(canvases[0][0])
		bottom.Draw(canvases[1][0])
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

func qualityPlots(r *Report) (*plot.Plot, *plot.Plot, error) {
	vs := r.sortedBySize()
	var kld, dppl plotter.XYs
	var kldLabels, dpplLabels []string
	for _, v := range vs {
		x := float64(v.SizeBytes) / (1 << 20)
		dppl = append(dppl, plotter.XY{X: x, Y: v.DeltaPPLPct})
		dpplLabels = append(dpplLabels, v.Type)
		if !v.IsBase && v.KLDMean > 0 {
			kld = append(kld, plotter.XY{X: x, Y: v.KLDMean})
			kldLabels = append(kldLabels, v.Type)
		}
	}
	title := fmt.Sprintf("%s: size vs quality (n_ctx %d, %d tokens scored, base %s)",
		baseName(r.Provenance.Source.Path), r.Settings.NCtx, r.Settings.TokensScored, r.Base)

	top := plot.New()
	top.Title.Text = title
	top.Title.TextStyle.Font.Size = vg.Points(13)
	top.X.Label.Text = "file size (MiB)"
	top.Y.Label.Text = "mean KL-divergence vs base (log scale)"
	if len(kld) > 0 {
		top.Y.Scale = plot.LogScale{}
		top.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		lo, hi := kld[0].Y, kld[0].Y
		for _, p := range kld {
			lo, hi = math.Min(lo, p.Y), math.Max(hi, p.Y)
		}
		top.Y.Min, top.Y.Max = lo/3, hi*3
		if err := addPoints(top, kld, kldLabels, color.RGBA{R: 200, G: 40, B: 40, A: 255}); err != nil {
			return nil, nil, err
		}
	}
	bottom := plot.New()
	bottom.X.Label.Text = "file size (MiB)"
	bottom.Y.Label.Text = "ΔPPL vs base (%)"
	if err := addPoints(bottom, dppl, dpplLabels, color.RGBA{R: 30, G: 80, B: 190, A: 255}); err != nil {
		return nil, nil, err
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
	// Same x range on both panels, with room for the labels.
	if len(dppl) > 0 {
		lo, hi := dppl[0].X, dppl[len(dppl)-1].X
		pad := 0.08*(hi-lo) + 0.5
		for _, p := range []*plot.Plot{top, bottom} {
			p.X.Min, p.X.Max = lo-pad, hi+2*pad
		}
		ylo, yhi := 0.0, 0.0
		for _, p := range dppl {
			ylo, yhi = math.Min(ylo, p.Y), math.Max(yhi, p.Y)
		}
		ypad := 0.12*(yhi-ylo) + 0.05
		bottom.Y.Min, bottom.Y.Max = ylo-ypad, yhi+ypad
	}
	return top, bottom, nil
}

func addPoints(p *plot.Plot, xys plotter.XYs, labels []string, c color.Color) error {
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
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].Font.Size = vg.Points(10)
		l.TextStyle[i].XAlign = draw.XLeft
		l.TextStyle[i].YAlign = draw.YBottom
	}
	l.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(3)}
	p.Add(line, s, l)
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

package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llqt/llqt/internal/fixtures"
	"github.com/llqt/llqt/perplexity"
)

// sample makes a report like a real run's, with made-up figures.
func sample() *Report {
	return &Report{
		Schema: Schema,
		Provenance: Provenance{Tool: "llqt", Version: "test", Commit: "abc",
			Source: Input{Path: "/m/tiny", Kind: "hf", SHA256: "11"}, Text: Text{Path: "t.txt", SHA256: "22", Tokens: 1000},
			CPU: CPU{Model: "Test CPU", Cores: 2, Flags: []string{"avx2"}, Kernels: "avx2"}, Threads: 2},
		Settings: Settings{Method: Method, NCtx: 256, Chunks: 4, TokensScored: 508, BenchPrompt: 16, BenchGen: 4, BenchRepeats: 1, KVCache: "f16"},
		Base:     "F32",
		Variants: []Variant{
			{Name: "f32", Type: "F32", SizeBytes: 27 << 20, BPW: 32, IsBase: true, PPL: 22.28, PPLStderr: 0.4, SameTop: 1},
			{Name: "q4_k_m", Type: "Q4_K_M", SizeBytes: 4 << 20, BPW: 4.97, PPL: 22.5, DeltaPPLPct: 0.99, KLDMean: 0.0052, KLDP99: 0.03, SameTop: 0.953},
			{Name: "q8_0", Type: "Q8_0", SizeBytes: 7 << 20, BPW: 8.5, PPL: 22.29, DeltaPPLPct: 0.045, KLDMean: 0.00015, KLDP99: 0.0008, SameTop: 0.992},
			{Name: "q2_k", Type: "Q2_K", SizeBytes: 3 << 20, BPW: 3.46, PPL: 23.14, DeltaPPLPct: 3.86, KLDMean: 0.12, KLDP99: 0.88, SameTop: 0.80},
		},
	}
}

func TestParseGates(t *testing.T) {
	g, err := ParseGates(" q4_k_m:dppl<3%,kld<0.05; q8_0:kld<=0.001 ;q2_k:top>=75%,tg>10")
	if err != nil {
		t.Fatal(err)
	}
	want := []Gate{
		{Variant: "q4_k_m", Metric: "dppl", Op: "<", Value: 3, Text: "dppl<3%"},
		{Variant: "q4_k_m", Metric: "kld", Op: "<", Value: 0.05, Text: "kld<0.05"},
		{Variant: "q8_0", Metric: "kld", Op: "<=", Value: 0.001, Text: "kld<=0.001"},
		{Variant: "q2_k", Metric: "top", Op: ">=", Value: 75, Text: "top>=75%"},
		{Variant: "q2_k", Metric: "tg", Op: ">", Value: 10, Text: "tg>10"},
	}
	if len(g) != len(want) {
		t.Fatalf("%d gates: %+v", len(g), g)
	}
	for i := range want {
		if g[i] != want[i] {
			t.Errorf("gate %d = %+v, want %+v", i, g[i], want[i])
		}
	}
	for _, bad := range []struct{ spec, msg string }{
		{"", "no conditions"},
		{"q4_k_m", "want VARIANT:CONDITION"},
		{":kld<1", "want VARIANT:CONDITION"},
		{"q4_k_m:kld=1", "want METRIC<VALUE"},
		{"q4_k_m:speed<1", "unknown metric"},
		{"q4_k_m:kld<1%", "not a percentage"},
		{"q4_k_m:kld<abc", "not a number"},
	} {
		if _, err := ParseGates(bad.spec); err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("ParseGates(%q) = %v, want %q", bad.spec, err, bad.msg)
		}
	}
}

func TestCheckGates(t *testing.T) {
	r := sample()
	g, err := ParseGates("q4_k_m:dppl<3%,kld<0.05;q8_0:kld<0.0001,top>99.5%;q3_k_m:kld<1;Q2_K:ppl<=23.14")
	if err != nil {
		t.Fatal(err)
	}
	got := Check(r, g)
	want := []string{
		"gate q8_0:kld<0.0001 failed: kld is 0.00015, must be < 0.0001",
		"gate q8_0:top>99.5% failed: top is 99.2%, must be > 99.5%",
		"gate q3_k_m:kld<1 failed: the report has no variant q3_k_m",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestMerge(t *testing.T) {
	a, b := sample(), sample()
	a.Variants = a.Variants[:2] // f32, q4_k_m
	b.Variants = []Variant{b.Variants[0], b.Variants[2]}
	b.Variants[0].PPL += 1e-4 // another runner: the base agrees to 0.1%
	m, err := Merge([]*Report{a, b}, []string{"a.json", "b.json"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Variants) != 3 || len(m.MergedFrom) != 2 || m.Base != "F32" {
		t.Fatalf("merged %d variants from %d parts, base %s", len(m.Variants), len(m.MergedFrom), m.Base)
	}
	q8, _ := m.Variant("q8_0")
	if want := 100 * (22.29/22.28 - 1); q8.DeltaPPLPct < want-1e-9 || q8.DeltaPPLPct > want+1e-9 {
		t.Errorf("ΔPPL recomputed as %v, want %v", q8.DeltaPPLPct, want)
	}

	c := sample()
	c.Provenance.Text.SHA256 = "33"
	if _, err := Merge([]*Report{a, c}, []string{"a", "c"}); err == nil || !strings.Contains(err.Error(), "different texts") {
		t.Errorf("different texts: %v", err)
	}
	d := sample()
	d.Variants[0].PPL = 25
	if _, err := Merge([]*Report{a, d}, []string{"a", "d"}); err == nil || !strings.Contains(err.Error(), "not comparable") {
		t.Errorf("disagreeing base: %v", err)
	}
	e := sample()
	e.Variants = e.Variants[1:]
	if _, err := Merge([]*Report{e}, []string{"e"}); err == nil || !strings.Contains(err.Error(), "base F32 is missing") {
		t.Errorf("no base: %v", err)
	}
	f := sample()
	f.Settings.NCtx = 512
	if _, err := Merge([]*Report{a, f}, []string{"a", "f"}); err == nil || !strings.Contains(err.Error(), "different settings") {
		t.Errorf("different n_ctx: %v", err)
	}
}

func TestRenderers(t *testing.T) {
	r := sample()
	var md bytes.Buffer
	if err := WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	text := md.String()
	// Sorted by size: Q2_K, Q4_K_M, Q8_0, F32.
	i2, i4, i8, i32 := strings.Index(text, "Q2_K"), strings.Index(text, "Q4_K_M"), strings.Index(text, "Q8_0"), strings.Index(text, "F32 (base)")
	if !(i2 >= 0 && i2 < i4 && i4 < i8 && i8 < i32) {
		t.Errorf("rows not sorted by size:\n%s", text)
	}
	for _, want := range []string{"| Variant", "|---", "22.5000 ± 0.0000", "+0.990", "95.30", "n_ctx 256", "Test CPU", "kernels avx2"} {
		if !strings.Contains(text, want) {
			t.Errorf("markdown lacks %q:\n%s", want, text)
		}
	}

	var cs bytes.Buffer
	if err := WriteCSV(&cs, r); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&cs).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 || rows[0][0] != "name" || rows[1][0] != "q2_k" || rows[4][7] != "true" {
		t.Errorf("csv rows %v", rows)
	}

	var js bytes.Buffer
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(js.Bytes(), "report.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Variants) != 4 || back.Variants[1].KLDMean != 0.0052 || back.Provenance.CPU.Flags[0] != "avx2" {
		t.Errorf("round trip: %+v", back)
	}
	if _, err := ReadJSON([]byte(`{"schema":"other"}`), "x.json"); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Errorf("wrong schema: %v", err)
	}
	if _, err := ReadJSON([]byte(`{`), "x.json"); err == nil {
		t.Error("bad JSON accepted")
	}
}

func TestPlots(t *testing.T) {
	var p, s bytes.Buffer
	if err := WritePlots(sample(), &p, &s); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&p)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 960 || b.Dy() != 960 {
		t.Errorf("PNG %v", b)
	}
	if !strings.Contains(s.String(), "<svg") || !strings.Contains(s.String(), "Q4_K_M") {
		t.Errorf("SVG lacks the svg element or the labels")
	}
	// A report with only the base still draws.
	r := sample()
	r.Variants = r.Variants[:1]
	if err := WritePlots(r, &p, &s); err != nil {
		t.Fatal(err)
	}
}

func TestParseTypes(t *testing.T) {
	recipe := func(s variantSpec, hf bool) string { return s.recipe(hf, FileHash{}, FileHash{}, Config{}) }
	specs, err := parseTypes([]string{"F16", "q4_k_m", "q8_0", " "}, true, false)
	if err != nil {
		t.Fatal(err)
	}
	recipes := []string{recipe(specs[0], true), recipe(specs[1], true), recipe(specs[2], true)}
	want := []string{"convert --outtype f16", "convert --outtype f32, quantize Q4_K_M", "convert --outtype q8_0"}
	if strings.Join(recipes, ";") != strings.Join(want, ";") {
		t.Errorf("recipes %q", recipes)
	}
	specs, err = parseTypes([]string{"q8_0"}, false, false)
	if err != nil || recipe(specs[0], false) != "quantize Q8_0" {
		t.Errorf("GGUF source: %v %v", specs, err)
	}
	for _, bad := range [][]string{{"q9_9"}, {"q4_k_m", "Q4_K_M"}, {}, {"copy"}, {"q4_k_m+imat"}, {"auto@"}, {"auto@0bpw"}, {"auto@17bpw"}, {"auto@-3M"}, {"auto@q2_k_s"}} {
		if _, err := parseTypes(bad, true, false); err == nil {
			t.Errorf("parseTypes(%q) without an imatrix accepted", bad)
		}
	}
	for _, bad := range [][]string{{"f16+imat"}, {"q4_k_m+imat", "Q4_K_M+IMAT"}, {"auto@4.5bpw", "AUTO@4.5bpw"}} {
		if _, err := parseTypes(bad, true, true); err == nil {
			t.Errorf("parseTypes(%q) with an imatrix accepted", bad)
		}
	}

	// With an importance matrix: presets with and without it, and the
	// three forms of size target.
	specs, err = parseTypes([]string{"q4_k_m", "q4_k_m+imat", "auto@4.5bpw", "auto@4.1M", "auto@q3_k_m"}, false, true)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, s := range specs {
		labels = append(labels, s.label())
	}
	if got := strings.Join(labels, ","); got != "Q4_K_M,Q4_K_M+imat,auto@4.5bpw,auto@4.1m,auto@q3_k_m" {
		t.Errorf("labels %s", got)
	}
	im := FileHash{Name: "im.dat", SHA256: "0123456789abcdef"}
	cal := FileHash{Name: "cal.txt", SHA256: "fedcba9876543210"}
	cfg := Config{CalibrationChunks: 4, CalibrationCtx: 256}
	for i, want := range []string{
		"quantize Q4_K_M",
		"quantize Q4_K_M --imatrix im.dat (sha256 0123456789ab)",
		"quantize --target-bpw 4.5 --calibration cal.txt (sha256 fedcba987654, 4×256) --imatrix im.dat (sha256 0123456789ab)",
		"quantize --target-size 4299161 --calibration cal.txt (sha256 fedcba987654, 4×256) --imatrix im.dat (sha256 0123456789ab)",
		"quantize --target-size (size of Q3_K_M) --calibration cal.txt (sha256 fedcba987654, 4×256) --imatrix im.dat (sha256 0123456789ab)",
	} {
		if got := specs[i].recipe(false, im, cal, cfg); got != want {
			t.Errorf("%s: recipe %q, want %q", specs[i].label(), got, want)
		}
	}
	if _, err := parseTypes([]string{"iq2_xxs"}, false, true); err == nil || !strings.Contains(err.Error(), "iq2_xxs+imat") {
		// Either llqt cannot encode IQ2_XXS yet, or it says how to ask for it.
		if err == nil || !strings.Contains(err.Error(), "does not implement") {
			t.Errorf("iq2_xxs without +imat: %v", err)
		}
	}
}

// TestBeats checks the frontier's reading on a made-up report: a variant
// beats the presets at least as large with a higher mean KLD.
func TestBeats(t *testing.T) {
	kld := &perplexity.KLDStats{}
	r := &Report{Variants: []Variant{
		{Name: "f32", Type: "F32", SizeBytes: 100, IsBase: true},
		{Name: "q8_0", Type: "Q8_0", SizeBytes: 50, KLDMean: 0.001, KLD: kld},
		{Name: "q4_k_m", Type: "Q4_K_M", SizeBytes: 30, KLDMean: 0.010, KLD: kld},
		{Name: "q4_k_m+imat", Type: "Q4_K_M", Label: "Q4_K_M+imat", Imatrix: "im.dat", SizeBytes: 30, KLDMean: 0.006, KLD: kld},
		{Name: "q3_k_m", Type: "Q3_K_M", SizeBytes: 25, KLDMean: 0.030, KLD: kld},
		{Name: "auto@q3_k_m", Type: "Q3_K_M", Label: "auto@q3_k_m", Target: "auto@q3_k_m", SizeBytes: 25, KLDMean: 0.008, KLD: kld},
	}}
	r.setBeats()
	for name, want := range map[string]string{
		"f32": "", "q8_0": "", "q4_k_m": "", "q4_k_m+imat": "Q4_K_M", "q3_k_m": "",
		"auto@q3_k_m": "Q4_K_M,Q3_K_M",
	} {
		v, ok := r.Variant(name)
		if !ok {
			t.Fatalf("no variant %s", name)
		}
		if got := strings.Join(v.Beats, ","); got != want {
			t.Errorf("%s beats %q, want %q", name, got, want)
		}
	}
	if v, _ := r.Variant("q4_k_m"); v.DisplayName() != "Q4_K_M" {
		t.Errorf("lookup of q4_k_m found %s", v.DisplayName())
	}
	if got := beatsCell([]string{"Q4_K_M", "Q3_K_M"}); got != "Q4_K_M (+1 more)" {
		t.Errorf("beats cell %q", got)
	}
	var png, svg bytes.Buffer
	if err := WritePlots(r, &png, &svg); err != nil {
		t.Fatal(err)
	}
	for _, legend := range []string{"presets + imatrix", "size targets (auto@)"} {
		if !strings.Contains(svg.String(), legend) {
			t.Errorf("the plot has no legend entry %q", legend)
		}
	}
}

func TestReuseNeedsMatchingProvenance(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m-Q4_0.gguf")
	if err := os.WriteFile(path, []byte("model bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	fh, err := hashFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := sidecar{Schema: sidecarSchema, Source: "aa", Type: "Q4_0", Recipe: "quantize Q4_0", Version: "v1", Commit: "c1", Output: fh.SHA256, Seconds: 1.5}
	if _, ok := reusable(path, sc); ok {
		t.Error("reused without a sidecar")
	}
	if err := writeSidecar(path, sc); err != nil {
		t.Fatal(err)
	}
	if got, ok := reusable(path, sc); !ok || got.Seconds != 1.5 {
		t.Errorf("matching sidecar: %v %+v", ok, got)
	}
	for name, change := range map[string]func(*sidecar){
		"source": func(s *sidecar) { s.Source = "bb" }, "commit": func(s *sidecar) { s.Commit = "c2" },
		"recipe": func(s *sidecar) { s.Recipe = "x" },
	} {
		w := sc
		change(&w)
		if _, ok := reusable(path, w); ok {
			t.Errorf("reused with a different %s", name)
		}
	}
	if err := os.WriteFile(path, []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := reusable(path, sc); ok {
		t.Error("reused a file whose bytes changed")
	}
}

func TestHashInputDirectory(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "b.json"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.bin"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, ".hidden"), []byte("y"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	in, err := hashInput(dir)
	if err != nil {
		t.Fatal(err)
	}
	if in.Kind != "hf" || len(in.Files) != 2 || in.Files[0].Name != "a.bin" || len(in.SHA256) != 64 {
		t.Errorf("%+v", in)
	}
	os.WriteFile(filepath.Join(dir, "a.bin"), []byte("z"), 0o644)
	in2, _ := hashInput(dir)
	if in2.SHA256 == in.SHA256 {
		t.Error("digest unchanged after a file changed")
	}
}

// TestBuildTinyModel runs the whole pipeline on the shared tiny model with
// small settings, then again to check that the files are reused.
func TestBuildTinyModel(t *testing.T) {
	if testing.Short() {
		t.Skip("converts, quantizes and evaluates a model; skipped with -short")
	}
	src := fixtures.Path(t, "tiny-llama-hf")
	text := fixtures.Path(t, "text/tinystories_eval.txt")
	out := t.TempDir()
	cfg := Config{Source: src, Types: []string{"f32", "q4_0"}, Text: text, OutDir: out, NCtx: 128, Chunks: 2,
		Threads: 2, BenchPrompt: 16, BenchGen: 4, BenchReps: 1, Version: "test", Commit: "t"}
	r, err := Build(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Base != "F32" || len(r.Variants) != 2 || r.Settings.TokensScored != 2*63 || r.Provenance.Text.Tokens != 62996 {
		t.Fatalf("report %+v", r)
	}
	q, _ := r.Variant("q4_0")
	if q.KLD == nil && r.Settings.TokensScored >= 100 {
		t.Errorf("no KL statistics for %d tokens", r.Settings.TokensScored)
	}
	if q.KLDMean <= 0 || q.SameTop <= 0.5 || q.SameTop >= 1 || q.BPW < 4.5 || q.BPW > 5 || q.TGTokensPerSec <= 0 {
		t.Errorf("Q4_0: %+v", q)
	}
	if err := WriteAll(out, r); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"report.md", "report.json", "report.csv", "size_vs_quality.png", "size_vs_quality.svg"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	again, err := Build(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range again.Variants {
		if !v.Reused {
			t.Errorf("%s not reused", v.Type)
		}
	}
	if again.Variants[1].PPL != q.PPL {
		t.Errorf("second run PPL %v, first %v", again.Variants[1].PPL, q.PPL)
	}
}

// TestBuildFrontier makes a preset with and without golden2's importance
// matrix and a size target at the preset's size (proxy sensitivity), and
// checks the frontier's reading: each is a real file of the right size and
// kind, and the table says what each beats.
func TestBuildFrontier(t *testing.T) {
	if testing.Short() {
		t.Skip("quantizes and evaluates a model three ways; skipped with -short")
	}
	src := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	im := fixtures.Path(t, "golden2/imatrix-tinystories.dat")
	text := fixtures.Path(t, "text/tinystories_eval.txt")
	out := t.TempDir()
	cfg := Config{Source: src, Types: []string{"f32", "auto@q4_k_m", "q4_k_m", "q4_k_m+imat"}, Text: text, OutDir: out,
		Imatrix: im, NCtx: 128, Chunks: 8, Threads: 2, BenchReps: -1, Version: "test", Commit: "t"}
	r, err := Build(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := r.Variant("q4_k_m")
	imat, _ := r.Variant("q4_k_m+imat")
	auto, _ := r.Variant("auto@q4_k_m")
	if plain.Imatrix != "" || imat.Imatrix != "imatrix-tinystories.dat" || auto.Target != "auto@q4_k_m" || auto.Imatrix == "" {
		t.Fatalf("kinds: %+v / %+v / %+v", plain, imat, auto)
	}
	// The size target is at most the preset's size (with the imatrix's
	// metadata) and within 1% of it.
	if auto.SizeBytes > imat.SizeBytes || float64(auto.SizeBytes) < 0.99*float64(imat.SizeBytes) {
		t.Errorf("auto@q4_k_m is %d bytes, Q4_K_M+imat %d", auto.SizeBytes, imat.SizeBytes)
	}
	for _, v := range []*Variant{plain, imat, auto} {
		if !(v.KLDMean > 0) || v.KLD == nil {
			t.Errorf("%s: KLD %v", v.DisplayName(), v.KLDMean)
		}
	}
	// Beats must agree with the figures (setBeats is checked on its own in
	// TestBeats): here, whichever variants have the smaller KLD beat Q4_K_M.
	for _, v := range []*Variant{imat, auto} {
		want := v.KLDMean < plain.KLDMean
		if got := slices.Contains(v.Beats, "Q4_K_M"); got != want {
			t.Errorf("%s (KLD %.5f) beats %v; Q4_K_M has %.5f", v.DisplayName(), v.KLDMean, v.Beats, plain.KLDMean)
		}
	}
	if err := WriteAll(out, r); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| auto@q4_k_m ", "| Q4_K_M+imat ", "size target auto@q4_k_m", "weighted-error proxy"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	t.Logf("mean KLD: Q4_K_M %.5f, Q4_K_M+imat %.5f, auto@q4_k_m %.5f (%d vs %d bytes)", plain.KLDMean, imat.KLDMean, auto.KLDMean, auto.SizeBytes, imat.SizeBytes)
}

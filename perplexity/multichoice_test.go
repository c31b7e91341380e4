package perplexity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/llqt/llqt/internal/fixtures"
)

func TestMT19937(t *testing.T) {
	// The C++ standard fixes the 10000th output of a default-seeded
	// std::mt19937 ([rand.predef]); seed 1's first output is well known.
	m := newMT19937(5489)
	var v uint32
	for range 10000 {
		v = m.next()
	}
	if v != 4123659995 {
		t.Errorf("10000th output %d, want 4123659995", v)
	}
	if got := newMT19937(1).next(); got != 1791095845 {
		t.Errorf("seed 1: first output %d, want 1791095845", got)
	}
	// uniformBelow stays in range and uses every value.
	seen := map[uint32]bool{}
	for range 1000 {
		x := m.uniformBelow(7)
		if x >= 7 {
			t.Fatalf("uniformBelow(7) = %d", x)
		}
		seen[x] = true
	}
	if len(seen) != 7 {
		t.Errorf("uniformBelow(7) gave only %d distinct values", len(seen))
	}
}

type hellaswagGolden struct {
	SelectionOrder []int `json:"selection_order"`
	Runs           map[string]struct {
		FinalAccNorm  float64  `json:"final_acc_norm"`
		NCorrect      int      `json:"n_correct"`
		ProgressLines []string `json:"progress_lines"`
	} `json:"runs"`
	F32Predicted []int `json:"f32_predicted_ending_by_task"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// TestHellaSwagOrderGolden: the order b4748 scores the 200 tasks in
// (golden2/hellaswag.json, checked there against probe runs).
func TestHellaSwagOrderGolden(t *testing.T) {
	var g hellaswagGolden
	readJSON(t, fixtures.Path(t, "golden2/hellaswag.json"), &g)
	got := HellaSwagOrder(len(g.SelectionOrder), len(g.SelectionOrder))
	for i := range got {
		if got[i] != g.SelectionOrder[i] {
			t.Fatalf("position %d: task %d, llama-perplexity scored %d", i, got[i], g.SelectionOrder[i])
		}
	}
}

func mcText(t *testing.T, rel string) string {
	t.Helper()
	raw, err := os.ReadFile(fixtures.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return PrepareText(raw)
}

// progressLines picks the per-task lines (they start with a digit).
func progressLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l != "" && l[0] >= '0' && l[0] <= '9' {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestHellaSwagGolden runs the engine on golden2's HellaSwag file as
// llama-perplexity --hellaswag --hellaswag-tasks 200 -c 512 did, and wants
// every printed "task<TAB>acc_norm" line identical, and the f32 model's
// choice per task equal to the probe runs' (f32_predicted_ending_by_task).
func TestHellaSwagGolden(t *testing.T) {
	var g hellaswagGolden
	readJSON(t, fixtures.Path(t, "golden2/hellaswag.json"), &g)
	tasks, err := ParseHellaSwag(mcText(t, "golden2/hellaswag-tinystories.txt"))
	if err != nil {
		t.Fatal(err)
	}
	variants := []string{"f32"}
	if !testing.Short() {
		variants = append(variants, "Q4_K_M")
	}
	for _, v := range variants {
		t.Run(v, func(t *testing.T) {
			m := loadEngine(t, fixtures.Path(t, "golden/tiny-llama-"+v+".gguf"))
			tk, err := m.Tokenizer()
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			res, err := HellaSwag(context.Background(), FromEngine(m), func(s string) ([]int32, error) { return tk.Encode(s, true, false) },
				tasks, MCOptions{NCtx: 512, Tasks: 200, Out: &out})
			if err != nil {
				t.Fatal(err)
			}
			want := g.Runs[v]
			got := progressLines(out.String())
			if len(got) != len(want.ProgressLines) {
				t.Fatalf("%d progress lines, llama-perplexity printed %d", len(got), len(want.ProgressLines))
			}
			for i := range got {
				if got[i] != want.ProgressLines[i] {
					t.Errorf("line %d: %q, llama-perplexity: %q", i+1, got[i], want.ProgressLines[i])
				}
			}
			if res.Correct != want.NCorrect || math.Abs(res.Accuracy-want.FinalAccNorm) > 1e-9 {
				t.Errorf("%d correct (%.4f), llama-perplexity %d (%.4f)", res.Correct, res.Accuracy, want.NCorrect, want.FinalAccNorm)
			}
			if v == "f32" {
				for i, idx := range res.Order {
					if res.Predicted[i] != g.F32Predicted[idx] {
						t.Errorf("task %d: ending %d chosen, llama-perplexity chose %d", idx, res.Predicted[i], g.F32Predicted[idx])
					}
				}
			}
		})
	}
}

// TestWinograndeGolden runs golden2's Winogrande CSV as llama-perplexity
// --winogrande -c 512 did, and holds llqt to the agreement llama.cpp keeps
// with itself: testdata/winogrande-llamacpp-avx2.json has the same runs by
// b4748 built for AVX2, while golden2 comes from its AVX-512 build.
//
// f32: task count, predictions, running accuracy and the final score line
// are identical; the two per-task scores, printed with six decimals, agree
// within 5e-4 (the engine's float sums are not ggml's; llama.cpp's AVX2
// build prints no line identical to its AVX-512 build's and differs by up
// to 2.6e-4).
//
// Q4_K_M: activations are quantized to 8 bits before each product, so a
// last-bit difference can move a rounding, and a Winogrande score is the
// mean of a handful of log-probabilities. llama.cpp's AVX2 build flips one
// prediction of its AVX-512 build and differs in scores by up to 0.018.
// llqt may flip no more predictions than that build, its accuracy may be
// no further from the golden than that build's, and its scores must agree
// within twice that build's largest difference. b4748 itself gives the
// same scores for a task alone or batched (checked with a one-task file).
func TestWinograndeGolden(t *testing.T) {
	var g struct {
		Runs map[string]struct {
			TasksLoaded int `json:"tasks_loaded"`
			Final       struct {
				NTasks int     `json:"n_tasks"`
				Score  float64 `json:"score"`
				StdErr float64 `json:"stderr"`
			} `json:"final"`
			ProgressLines []string `json:"progress_lines"`
		} `json:"runs"`
	}
	readJSON(t, fixtures.Path(t, "golden2/winogrande.json"), &g)
	var avx2 struct {
		Runs map[string]struct {
			ProgressLines []string `json:"progress_lines"`
			Final         string   `json:"final"`
		} `json:"runs"`
	}
	readJSON(t, "testdata/winogrande-llamacpp-avx2.json", &avx2)
	tasks, skipped := ParseWinogrande(mcText(t, "golden2/winogrande-tinystories.csv"))
	if len(skipped) != 0 {
		t.Errorf("skipped rows: %v", skipped)
	}
	for _, tc := range []struct {
		variant string
		exact   bool
	}{{"f32", true}, {"Q4_K_M", false}} {
		t.Run(tc.variant, func(t *testing.T) {
			want := g.Runs[tc.variant]
			// llama.cpp's own spread: its AVX2 build against the golden.
			own := avx2.Runs[tc.variant].ProgressLines
			if len(own) != len(want.ProgressLines) {
				t.Fatalf("testdata has %d AVX2 lines, golden2 %d", len(own), len(want.ProgressLines))
			}
			ownWorst, ownFlips := lineSpread(t, own, want.ProgressLines)
			scoreTol := max(5e-4, 2*ownWorst)
			ownAcc, err := strconv.ParseFloat(strings.Fields(own[len(own)-1])[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			if len(tasks) != want.TasksLoaded {
				t.Fatalf("%d tasks loaded, llama-perplexity loaded %d", len(tasks), want.TasksLoaded)
			}
			m := loadEngine(t, fixtures.Path(t, "golden/tiny-llama-"+tc.variant+".gguf"))
			tk, err := m.Tokenizer()
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			res, err := Winogrande(context.Background(), FromEngine(m), func(s string) ([]int32, error) { return tk.Encode(s, true, false) },
				tasks, MCOptions{NCtx: 512, Out: &out})
			if err != nil {
				t.Fatal(err)
			}
			got := progressLines(out.String())
			if len(got) != len(want.ProgressLines) {
				t.Fatalf("%d progress lines, want %d", len(got), len(want.ProgressLines))
			}
			worst, flips := lineSpread(t, got, want.ProgressLines)
			if tc.exact {
				for i := range got {
					a, b := strings.Fields(got[i]), strings.Fields(want.ProgressLines[i])
					if a[1] != b[1] || a[4] != b[4] {
						t.Errorf("line %d: %q, llama-perplexity: %q (accuracy or prediction differ)", i+1, got[i], want.ProgressLines[i])
					}
				}
			}
			if worst > scoreTol {
				t.Errorf("scores differ from llama-perplexity's by up to %.6f (allowed %g: twice llama.cpp's AVX2 build's %.6f)", worst, scoreTol, ownWorst)
			}
			if flips > ownFlips {
				t.Errorf("%d predictions differ from llama-perplexity's; its AVX2 build flips %d", flips, ownFlips)
			}
			if math.Abs(res.Accuracy-want.Final.Score) > math.Abs(ownAcc-want.Final.Score)+5e-5 {
				t.Errorf("accuracy %.4f, llama-perplexity %.4f: further than its AVX2 build's %.4f", res.Accuracy, want.Final.Score, ownAcc)
			}
			t.Logf("largest score difference from llama-perplexity (AVX-512): %.6f, its AVX2 build %.6f; %d of %d predictions differ (AVX2 build %d); accuracy %.4f vs %.4f (AVX2 build %.4f)",
				worst, ownWorst, flips, len(got), ownFlips, res.Accuracy, want.Final.Score, ownAcc)
			if !res.HasStdErr || !strings.Contains(out.String(), "Final Winogrande score(119 tasks): ") {
				t.Error("no final score line")
			}
			if tc.exact && (math.Abs(res.Accuracy-want.Final.Score) > 5e-5 || math.Abs(res.StdErr-want.Final.StdErr) > 5e-5) {
				t.Errorf("final %.4f ± %.4f, llama-perplexity %.4f ± %.4f", res.Accuracy, res.StdErr, want.Final.Score, want.Final.StdErr)
			}
		})
	}
}

// lineSpread compares Winogrande progress lines: task and answer must
// match; it returns the largest score difference and how many predictions
// differ.
func lineSpread(t *testing.T, got, want []string) (worst float64, flips int) {
	t.Helper()
	for i := range got {
		a, b := strings.Fields(got[i]), strings.Fields(want[i])
		if len(a) != 6 || len(b) != 6 {
			t.Fatalf("line %d: %q vs %q", i+1, got[i], want[i])
		}
		if a[0] != b[0] || a[5] != b[5] {
			t.Errorf("line %d: %q, llama-perplexity: %q (task or answer differ)", i+1, got[i], want[i])
		}
		if a[4] != b[4] {
			flips++
		}
		for k := 2; k <= 3; k++ {
			x, _ := strconv.ParseFloat(a[k], 64)
			y, _ := strconv.ParseFloat(b[k], 64)
			worst = max(worst, math.Abs(x-y))
		}
	}
	return worst, flips
}

func TestParseWinogrande(t *testing.T) {
	text := "0,The _ sat.,cat,dog,1\n" +
		"1,\"Well, _ ran.\",A,B,2\r\n" +
		"2,no blank here,A,B,1\n" +
		"3,too,few,commas\n" +
		"4,_ x,A,B,3\n" +
		"5,_ last,A,B,1" // ends at EOF: not loaded, as in b4748
	tasks, skipped := ParseWinogrande(text)
	if len(tasks) != 2 || len(skipped) != 3 {
		t.Fatalf("%d tasks, %d skipped (%v)", len(tasks), len(skipped), skipped)
	}
	if tasks[0].First != "The " || tasks[0].Second != " sat." || tasks[0].Choices != [2]string{"cat", "dog"} || tasks[0].Answer != 1 {
		t.Errorf("row 0: %+v", tasks[0])
	}
	if tasks[1].First != "Well, " || tasks[1].Second != " ran." || tasks[1].Answer != 2 {
		t.Errorf("quoted row: %+v", tasks[1])
	}
}

func TestParseHellaSwag(t *testing.T) {
	good := "ctx\n2\na\nb\nc\nd\nctx2\n0\ne\nf\ng\nh\n"
	tasks, err := ParseHellaSwag(good)
	if err != nil || len(tasks) != 2 || tasks[0].Gold != 2 || tasks[1].Endings[3] != "h" {
		t.Fatalf("%+v, %v", tasks, err)
	}
	for _, bad := range []string{"ctx\n2\na\nb\nc\n", "ctx\nx\na\nb\nc\nd", "ctx\n4\na\nb\nc\nd"} {
		if _, err := ParseHellaSwag(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestWinograndeOrder(t *testing.T) {
	for _, tc := range []struct{ total, n, want int }{{10, 0, 10}, {10, 20, 10}, {10, 3, 3}, {1, 1, 1}} {
		o := WinograndeOrder(tc.total, tc.n)
		if len(o) != tc.want {
			t.Fatalf("%v: %d tasks", tc, len(o))
		}
		seen := map[int]bool{}
		for _, i := range o {
			if i < 0 || i >= tc.total || seen[i] {
				t.Fatalf("%v: bad order %v", tc, o)
			}
			seen[i] = true
		}
	}
}

func FuzzParseWinogrande(f *testing.F) {
	f.Add("0,The _ sat.,cat,dog,1\n1,\"a, _\",x,y,2\n")
	f.Add(",\",,,\n")
	f.Add("0,\"\",a,b,1\n")
	f.Fuzz(func(t *testing.T, s string) {
		tasks, _ := ParseWinogrande(s)
		for _, task := range tasks {
			if task.Answer != 1 && task.Answer != 2 {
				t.Fatalf("answer %d", task.Answer)
			}
		}
	})
}

func FuzzParseHellaSwag(f *testing.F) {
	f.Add("ctx\n2\na\nb\nc\nd\n")
	f.Add("\n\n\n\n\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		tasks, err := ParseHellaSwag(s)
		if err != nil {
			return
		}
		for _, task := range tasks {
			if task.Gold < 0 || task.Gold > 3 {
				t.Fatalf("gold %d", task.Gold)
			}
		}
	})
}

// buildChoiceFile writes tasks in llama-perplexity's binary
// multiple-choice format, each with an empty mc2 set.
func buildChoiceFile(tasks []ChoiceTask) []byte {
	u32 := func(b []byte, v uint32) []byte { return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24)) }
	str := func(b []byte, s string) []byte { return append(u32(b, uint32(len(s))), s...) }
	var bodies [][]byte
	for _, t := range tasks {
		b := str(nil, t.Question)
		b = u32(b, uint32(len(t.Answers)))
		for _, a := range t.Answers {
			b = str(b, a)
		}
		for _, l := range t.Labels {
			b = u32(b, uint32(l))
		}
		bodies = append(bodies, u32(b, 0))
	}
	out := u32(nil, uint32(len(tasks)))
	off := 4 + 4*len(tasks)
	for _, b := range bodies {
		out = u32(out, uint32(off))
		off += len(b)
	}
	for _, b := range bodies {
		out = append(out, b...)
	}
	return out
}

// TestMultipleChoiceGolden: llama-perplexity --multiple-choice on a binary
// file made from the first 120 HellaSwag tasks of golden2
// (testdata/multiple-choice.json, which records the file's sha256): every
// progress line and the final and random-chance lines are identical, for
// all tasks and for --multiple-choice-tasks 50 (random selection).
func TestMultipleChoiceGolden(t *testing.T) {
	var ref struct {
		FileSHA256 string `json:"file_sha256"`
		NTasks     int    `json:"n_tasks"`
		Runs       []struct {
			Model         string            `json:"model"`
			Tasks         int               `json:"tasks"`
			ProgressLines []string          `json:"progress_lines"`
			Final         map[string]string `json:"final"`
		} `json:"runs"`
	}
	readJSON(t, "testdata/multiple-choice.json", &ref)
	hs, err := ParseHellaSwag(mcText(t, "golden2/hellaswag-tinystories.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var tasks []ChoiceTask
	for _, h := range hs[:ref.NTasks] {
		labels := make([]int32, 4)
		labels[h.Gold] = 1
		tasks = append(tasks, ChoiceTask{Question: h.Context, Answers: h.Endings[:], Labels: labels})
	}
	file := buildChoiceFile(tasks)
	if sum := sha256.Sum256(file); hex.EncodeToString(sum[:]) != ref.FileSHA256 {
		t.Fatalf("built task file differs from the one llama-perplexity read")
	}
	runs := ref.Runs
	if testing.Short() {
		runs = runs[1:]
	}
	for _, r := range runs {
		t.Run(strconv.Itoa(r.Tasks), func(t *testing.T) {
			sel, err := ParseMultipleChoice(file, r.Tasks)
			if err != nil {
				t.Fatal(err)
			}
			m := loadEngine(t, fixtures.Path(t, r.Model))
			tk, err := m.Tokenizer()
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if _, err := MultipleChoice(context.Background(), FromEngine(m), func(s string) ([]int32, error) { return tk.Encode(s, true, false) },
				sel, MCOptions{NCtx: 512, Out: &out}); err != nil {
				t.Fatal(err)
			}
			got := progressLines(out.String())
			if len(got) != len(r.ProgressLines) {
				t.Fatalf("%d progress lines, llama-perplexity printed %d", len(got), len(r.ProgressLines))
			}
			for i := range got {
				if got[i] != r.ProgressLines[i] {
					t.Errorf("line %d: %q, llama-perplexity: %q", i+1, got[i], r.ProgressLines[i])
				}
			}
			for k, v := range r.Final {
				if !strings.Contains(out.String(), k+": "+v+"\n") {
					t.Errorf("no line %q in the output", k+": "+v)
				}
			}
		})
	}
}

func FuzzParseMultipleChoice(f *testing.F) {
	f.Add(buildChoiceFile([]ChoiceTask{{Question: "q", Answers: []string{"a", "b"}, Labels: []int32{0, 1}}}), 0)
	f.Add(buildChoiceFile([]ChoiceTask{{Question: "q", Answers: []string{"a"}, Labels: []int32{1}}, {Question: "r"}}), 1)
	f.Add([]byte{1, 0, 0, 0, 255, 255, 255, 255}, 1)
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		tasks, err := ParseMultipleChoice(data, n%4)
		if err != nil {
			return
		}
		for _, task := range tasks {
			if len(task.Answers) != len(task.Labels) || len(task.Answers) > maxAnswers {
				t.Fatalf("%d answers, %d labels", len(task.Answers), len(task.Labels))
			}
		}
	})
}

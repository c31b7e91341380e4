package perplexity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// This file scores multiple-choice tasks as llama-perplexity b4748 does with
// --hellaswag and --winogrande: every candidate continuation is evaluated as
// its own sequence (llama.cpp puts them in one batch with separate sequence
// ids sharing the common prefix, which gives each the same attention), and
// the candidate with the best mean log-probability wins.

// Tokenize turns text into token ids with the vocabulary's BOS in front when
// it adds one (llama.cpp's common_tokenize(ctx, text, true)).
type Tokenize func(text string) ([]int32, error)

// MCOptions are the settings of a multiple-choice run.
type MCOptions struct {
	// NCtx bounds the tokens of one task, all its candidates together, as
	// llama.cpp's batch does (-c); 0 means 512.
	NCtx int
	// Tasks limits the tasks scored (--hellaswag-tasks, --winogrande-tasks);
	// ≤0 means llama.cpp's default (400 for HellaSwag, all for Winogrande).
	Tasks int
	// Out receives llama-perplexity's running output; nil prints nothing.
	Out io.Writer
	// Progress, if set, is called after each task.
	Progress func(done, total int)
}

// withDefaults fills in what the zero options leave open: a 512-token
// context and no running output.
func (o MCOptions) withDefaults() MCOptions {
	if o.NCtx <= 0 {
		o.NCtx = DefaultNCtx
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	return o
}

// MCResult is the outcome of a multiple-choice run.
type MCResult struct {
	Kind      string  `json:"kind"`
	Tasks     int     `json:"tasks"`
	Correct   int     `json:"correct"`
	Accuracy  float64 `json:"accuracy"`   // percent
	StdErr    float64 `json:"stderr"`     // percent; only for Winogrande runs of at least 100 tasks
	HasStdErr bool    `json:"has_stderr"` // false when llama.cpp prints no final score
	// Order is the file index (0-based) of each task as scored.
	Order []int `json:"order"`
	// Predicted is the chosen candidate (0-based) of each scored task.
	Predicted []int   `json:"predicted"`
	Seconds   float64 `json:"seconds"`
}

// mt19937 is the 32-bit Mersenne Twister of std::mt19937.
type mt19937 struct {
	s [624]uint32
	i int
}

func newMT19937(seed uint32) *mt19937 {
	m := &mt19937{i: 624}
	m.s[0] = seed
	for i := 1; i < 624; i++ {
		m.s[i] = 1812433253*(m.s[i-1]^(m.s[i-1]>>30)) + uint32(i)
	}
	return m
}

func (m *mt19937) next() uint32 {
	if m.i >= 624 {
		for k := range 624 {
			y := m.s[k]&0x80000000 | m.s[(k+1)%624]&0x7fffffff
			v := m.s[(k+397)%624] ^ y>>1
			if y&1 != 0 {
				v ^= 0x9908b0df
			}
			m.s[k] = v
		}
		m.i = 0
	}
	y := m.s[m.i]
	m.i++
	y ^= y >> 11
	y ^= y << 7 & 0x9d2c5680
	y ^= y << 15 & 0xefc60000
	y ^= y >> 18
	return y
}

// uniformBelow draws from [0, n) as libstdc++'s (GCC 12)
// std::uniform_int_distribution does with a 32-bit engine and a range below
// 2³²: Lemire's multiply-and-shift with rejection.
func (m *mt19937) uniformBelow(n uint32) uint32 {
	product := uint64(m.next()) * uint64(n)
	low := uint32(product)
	if low < n {
		threshold := -n % n
		for low < threshold {
			product = uint64(m.next()) * uint64(n)
			low = uint32(product)
		}
	}
	return uint32(product >> 32)
}

// chunkLogProbs is llama-perplexity's compute_logprobs for one row: the
// log-softmax of tok in float32 (sum of exponentials in float32 too).
func chunkLogProb(logits []float32, tok int32) float32 {
	maxLogit := maxOf(logits)
	var sum float32
	for _, v := range logits {
		sum += expf(v - maxLogit)
	}
	return logits[tok] - maxLogit - float32(math.Log(float64(sum)))
}

// firstLogProb is log(softmax(logits)[tok]) as hellaswag_score computes it:
// probabilities in float32 from a double sum, the log in float32.
func firstLogProb(logits []float32, tok int32) float32 {
	maxLogit := maxOf(logits)
	s := sumExp(logits, maxLogit)
	p := float32(float64(expf(logits[tok]-maxLogit)) / s)
	return float32(math.Log(float64(p)))
}

// decodeAll evaluates one whole sequence from an empty cache and returns all
// its rows of logits (copied).
func decodeAll(c Context, toks []int32, nVocab int) ([]float32, error) {
	c.Reset()
	out, err := c.Decode(toks, true)
	if err != nil {
		return nil, err
	}
	if len(out) != len(toks)*nVocab {
		return nil, fmt.Errorf("engine returned %d logits for %d tokens", len(out), len(toks))
	}
	return append([]float32(nil), out...), nil
}

func commonPrefix(seqs ...[]int32) int {
	n := 0
	for n < len(seqs[0]) {
		for _, s := range seqs[1:] {
			if n >= len(s) || s[n] != seqs[0][n] {
				return n
			}
		}
		n++
	}
	return n
}

// HellaSwagTask is one task of llama-perplexity's HellaSwag format.
type HellaSwagTask struct {
	Context string
	Gold    int
	Endings [4]string
}

// ParseHellaSwag reads llama-perplexity's HellaSwag format: six lines per
// task (context, gold ending index, four endings). text is the file as -f
// reads it (PrepareText).
func ParseHellaSwag(text string) ([]HellaSwagTask, error) {
	lines := strings.Split(text, "\n")
	// std::getline yields no empty line after a final newline.
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines)%6 != 0 {
		return nil, fmt.Errorf("number of lines (%d) is not a multiple of 6", len(lines))
	}
	tasks := make([]HellaSwagTask, len(lines)/6)
	for i := range tasks {
		l := lines[6*i : 6*i+6]
		gold, err := leadingInt(l[1])
		if err != nil || gold < 0 || gold > 3 {
			return nil, fmt.Errorf("task %d (line %d): gold ending %q is not 0, 1, 2 or 3", i+1, 6*i+2, l[1])
		}
		tasks[i] = HellaSwagTask{Context: l[0], Gold: gold, Endings: [4]string{l[2], l[3], l[4], l[5]}}
	}
	return tasks, nil
}

// leadingInt parses an integer after optional spaces and ignores what
// follows, as std::stoi and istream >> int do.
func leadingInt(s string) (int, error) {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	end := 0
	if end < len(s) && (s[end] == '+' || s[end] == '-') {
		end++
	}
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	return strconv.Atoi(s[:end])
}

// HellaSwagOrder is the order in which llama-perplexity scores n of the
// total tasks: drawn without replacement with std::mt19937(1).
func HellaSwagOrder(total, n int) []int {
	left := make([]int, total)
	for i := range left {
		left[i] = i
	}
	rng := newMT19937(1)
	order := make([]int, 0, n)
	for range n {
		j := int(rng.uniformBelow(uint32(len(left))))
		order = append(order, left[j])
		left = append(left[:j], left[j+1:]...)
	}
	return order
}

// HellaSwag scores tasks as llama-perplexity --hellaswag: each ending is
// scored as context + " " + ending by the mean log-probability of its
// tokens (acc_norm), and the running accuracy is printed after each task.
func HellaSwag(ctx context.Context, m Model, tok Tokenize, tasks []HellaSwagTask, opt MCOptions) (*MCResult, error) {
	opt = opt.withDefaults()
	n := len(tasks)
	limit := opt.Tasks
	if limit <= 0 {
		limit = 400
	}
	n = min(n, limit)
	if n == 0 {
		return nil, errors.New("no tasks")
	}
	out := opt.Out
	order := HellaSwagOrder(len(tasks), n)
	res := &MCResult{Kind: "hellaswag", Tasks: n, Order: order}
	secs, err := scoreEach(ctx, m, opt, n, "\ntask\tacc_norm\n", func(c Context, nVocab, i int) error {
		idx := order[i]
		t := tasks[idx]
		seqs := make([][]int32, 4)
		for s := range 4 {
			var err error
			if seqs[s], err = tok(t.Context + " " + t.Endings[s]); err != nil {
				return fmt.Errorf("task %d: %w", idx+1, err)
			}
		}
		cp, required, bad := choicePrefix(seqs)
		if bad >= 0 {
			return fmt.Errorf("task %d: ending %d adds no token to the context", idx+1, bad)
		}
		if required > opt.NCtx {
			return fmt.Errorf("task %d does not fit in the context window (%d tokens, -c %d)", i, required, opt.NCtx)
		}
		var score [4]float64
		for s := range 4 {
			rows, err := decodeAll(c, seqs[s], nVocab)
			if err != nil {
				return fmt.Errorf("task %d, ending %d: %w", idx+1, s, err)
			}
			score[s] = meanLogProb[float64](rows, nVocab, seqs[s], cp)
		}
		best := 0
		for s := 1; s < 4; s++ {
			if score[s] > score[best] {
				best = s
			}
		}
		if best == t.Gold {
			res.Correct++
		}
		res.Predicted = append(res.Predicted, best)
		fmt.Fprintf(out, "%d\t%.8f\n", i+1, float64(res.Correct)/float64(i+1)*100.0)
		return nil
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(out)
	res.Accuracy = float64(res.Correct) / float64(n) * 100
	res.Seconds = secs
	return res, nil
}

// scoreEach runs score for tasks 0 … n−1 on one context, the frame every
// benchmark here shares: header is printed once the context exists, a
// cancelled ctx stops the run between tasks, and progress is reported after
// each task. It returns the seconds the tasks took.
func scoreEach(ctx context.Context, m Model, opt MCOptions, n int, header string, score func(c Context, nVocab, i int) error) (float64, error) {
	c, err := m.NewContext(opt.NCtx)
	if err != nil {
		return 0, err
	}
	defer closeContext(c)
	nVocab := m.NVocab()
	fmt.Fprint(opt.Out, header)
	start := time.Now()
	for i := range n {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := score(c, nVocab, i); err != nil {
			return 0, err
		}
		if opt.Progress != nil {
			opt.Progress(i+1, n)
		}
	}
	return time.Since(start).Seconds(), nil
}

// choicePrefix returns the common prefix of a task's token sequences (its
// context followed by each choice) and the tokens the task needs in the
// context window: the prefix once, then each choice's own tokens. bad is the
// first choice that adds no token after the prefix (every one when there
// is no prefix), or −1.
func choicePrefix(seqs [][]int32) (cp, required, bad int) {
	cp = commonPrefix(seqs...)
	required = cp
	for s, seq := range seqs {
		required += len(seq) - cp
		if len(seq) <= cp || cp == 0 {
			return cp, required, s
		}
	}
	return cp, required, -1
}

// meanLogProb is the mean log-probability of seq's tokens after the common
// prefix cp, from its logits rows (decodeAll's), summed in F: llama.cpp sums
// in double for HellaSwag and in float for multiple choice.
func meanLogProb[F float32 | float64](rows []float32, nVocab int, seq []int32, cp int) F {
	row := func(p int) []float32 { return rows[p*nVocab : (p+1)*nVocab] }
	sum := F(firstLogProb(row(cp-1), seq[cp]))
	count := 1
	for j := cp; j < len(seq)-1; j++ {
		sum += F(chunkLogProb(row(j), seq[j+1]))
		count++
	}
	return sum / F(count)
}

// WinograndeTask is one row of llama-perplexity's Winogrande CSV.
type WinograndeTask struct {
	First, Second string
	Choices       [2]string
	Answer        int // 1 or 2
}

// ParseWinogrande reads llama-perplexity's Winogrande CSV (index, sentence
// with one "_", option 1, option 2, answer 1 or 2; the sentence may be
// double-quoted). Like b4748 it skips malformed rows (reported in skipped)
// and stops at a last line that has no newline, so that row is not loaded.
func ParseWinogrande(text string) (tasks []WinograndeTask, skipped []string) {
	lines := strings.Split(text, "\n")
	lines = lines[:len(lines)-1] // the part after the last "\n" ends at EOF
	for n, line := range lines {
		var commas [4]int
		k := 0
		quoted := false
		for i := 0; i < len(line) && k < 4; i++ {
			switch {
			case quoted:
				quoted = line[i] != '"'
			case line[i] == ',':
				commas[k] = i
				k++
			case line[i] == '"':
				quoted = true
			}
		}
		if k != 4 {
			skipped = append(skipped, fmt.Sprintf("line %d: failed to find comma separators", n+1))
			continue
		}
		var sentence string
		if line[commas[0]+1] == '"' {
			// llama.cpp drops the quotes by position; a field like ,"x",
			// has them right before the next comma.
			if commas[1]-commas[0]-3 < 0 {
				skipped = append(skipped, fmt.Sprintf("line %d: bad quoted sentence", n+1))
				continue
			}
			sentence = line[commas[0]+2 : commas[1]-1]
		} else {
			sentence = line[commas[0]+1 : commas[1]]
		}
		where := strings.IndexByte(sentence, '_')
		if where < 0 {
			skipped = append(skipped, fmt.Sprintf("line %d: no _ in the sentence", n+1))
			continue
		}
		ans, err := leadingInt(line[commas[3]+1:])
		if err != nil || ans < 1 || ans > 2 {
			skipped = append(skipped, fmt.Sprintf("line %d: failed to parse answer %q", n+1, line[commas[3]+1:]))
			continue
		}
		tasks = append(tasks, WinograndeTask{
			First: sentence[:where], Second: sentence[where+1:],
			Choices: [2]string{line[commas[1]+1 : commas[2]], line[commas[2]+1 : commas[3]]},
			Answer:  ans,
		})
	}
	return tasks, skipped
}

// WinograndeOrder is the task selection of llama-perplexity
// --winogrande-tasks n when n is below the total: std::mt19937(1) draws an
// index with float arithmetic, and the last remaining index fills the gap.
// For n ≤ 0 or n ≥ total the file order is kept.
func WinograndeOrder(total, n int) []int {
	order := make([]int, 0, total)
	if n <= 0 || n >= total {
		for i := range total {
			order = append(order, i)
		}
		return order
	}
	aux := make([]int, total)
	for i := range aux {
		aux[i] = i
	}
	rng := newMT19937(1)
	scale := 1 / (1 + float32(math.MaxUint32))
	for range n {
		j := int(scale * float32(rng.next()) * float32(len(aux)))
		order = append(order, aux[j])
		aux[j] = aux[len(aux)-1]
		aux = aux[:len(aux)-1]
	}
	return order
}

// Winogrande scores tasks as llama-perplexity --winogrande: both sentences
// (the blank filled with each option) are scored by the mean log-probability
// of the tokens after the option when at least 4 tokens follow the common
// prefix in both, else after the common prefix; b4748's index arithmetic for
// the second sentence is kept, including its use of the first sentence's
// last logits in the latter case.
func Winogrande(ctx context.Context, m Model, tok Tokenize, tasks []WinograndeTask, opt MCOptions) (*MCResult, error) {
	opt = opt.withDefaults()
	if len(tasks) == 0 {
		return nil, errors.New("no tasks")
	}
	out := opt.Out
	order := WinograndeOrder(len(tasks), opt.Tasks)
	res := &MCResult{Kind: "winogrande", Tasks: len(order), Order: order}
	const minTrailing = 3
	secs, err := scoreEach(ctx, m, opt, len(order), "", func(c Context, nVocab, i int) error {
		idx := order[i]
		t := tasks[idx]
		var seq [2][]int32
		var base [2]int
		for s := range 2 {
			var err error
			if seq[s], err = tok(t.First + t.Choices[s] + t.Second); err != nil {
				return fmt.Errorf("task %d: %w", idx+1, err)
			}
			b, err := tok(t.First + t.Choices[s])
			if err != nil {
				return fmt.Errorf("task %d: %w", idx+1, err)
			}
			base[s] = len(b)
		}
		cp := commonPrefix(seq[0], seq[1])
		if cp == 0 || len(seq[0]) <= cp || len(seq[1]) <= cp {
			return fmt.Errorf("task %d: the two sentences give the same tokens or share none", idx+1)
		}
		if cp+len(seq[0])-cp+len(seq[1])-cp > opt.NCtx {
			return fmt.Errorf("task %d does not fit in the context window (-c %d)", i, opt.NCtx)
		}
		// llama.cpp's logits rows for the task: the prefix's last token,
		// then every token of sentence 1 after the prefix, then of sentence 2.
		var rows [][]float32
		for s := range 2 {
			all, err := decodeAll(c, seq[s], nVocab)
			if err != nil {
				return fmt.Errorf("task %d, option %d: %w", idx+1, s+1, err)
			}
			if s == 0 {
				rows = append(rows, all[(cp-1)*nVocab:cp*nVocab])
			}
			for p := cp; p < len(seq[s]); p++ {
				rows = append(rows, all[p*nVocab:(p+1)*nVocab])
			}
		}
		skipChoice := len(seq[0])-cp > minTrailing && len(seq[1])-cp > minTrailing
		var score [2]float32
		for s := range 2 {
			nb := cp
			if skipChoice {
				nb = base[s]
			}
			last := 0
			if len(seq[s])-nb > 1 {
				last = 1
			}
			li := nb - cp
			if s == 1 {
				li = len(seq[0]) - cp + nb - cp
			}
			if nb < 1 || len(seq[s])-nb-last <= 0 {
				return fmt.Errorf("task %d, option %d: no tokens to score after the option", idx+1, s+1)
			}
			var sum float32
			for j := nb - 1; j < len(seq[s])-1-last; j++ {
				if li < 0 || li >= len(rows) {
					return fmt.Errorf("task %d, option %d: logits row %d out of range", idx+1, s+1, li)
				}
				sum += chunkLogProb(rows[li], seq[s][j+1])
				li++
			}
			score[s] = sum / float32(len(seq[s])-nb-last)
		}
		result := 2
		if score[0] > score[1] {
			result = 1
		}
		if result == t.Answer {
			res.Correct++
		}
		res.Predicted = append(res.Predicted, result-1)
		fmt.Fprintf(out, "%d\t%.4f\t%10.6f  %10.6f  %d  %d\n", i+1, 100.0*float64(res.Correct)/float64(i+1),
			score[0], score[1], result, t.Answer)
		return nil
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(out)
	n := len(order)
	res.Accuracy = 100 * float64(res.Correct) / float64(n)
	res.Seconds = secs
	if n >= 100 {
		p := float32(res.Correct) / float32(n)
		sigma := 100 * float32(math.Sqrt(float64(p*(1-p)/float32(n-1))))
		res.StdErr, res.HasStdErr = float64(sigma), true
		fmt.Fprintf(out, "Final Winogrande score(%d tasks): %.4f +/- %.4f\n", n, float64(100*p), float64(sigma))
	}
	return res, nil
}

// ChoiceTask is one task of llama-perplexity's binary --multiple-choice
// format: a question, its answers and their labels (1 marks a correct
// answer; only the single-correct set mc1 is scored, as in b4748).
type ChoiceTask struct {
	Question string
	Answers  []string
	Labels   []int32
}

// maxAnswers is b4748's limit on the answers of one task.
const maxAnswers = 100

type mcReader struct {
	b   []byte
	off int
}

func (r *mcReader) u32() (uint32, bool) {
	if r.off < 0 || len(r.b)-r.off < 4 {
		return 0, false
	}
	v := uint32(r.b[r.off]) | uint32(r.b[r.off+1])<<8 | uint32(r.b[r.off+2])<<16 | uint32(r.b[r.off+3])<<24
	r.off += 4
	return v, true
}

func (r *mcReader) str() (string, bool) {
	n, ok := r.u32()
	if !ok || uint64(n) > uint64(len(r.b)-r.off) {
		return "", false
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s, true
}

// answers reads one answer set: u32 count (≤ 100), the strings, then as
// many int32 labels.
func (r *mcReader) answers() ([]string, []int32, bool) {
	n, ok := r.u32()
	if !ok || n > maxAnswers {
		return nil, nil, false
	}
	ans := make([]string, n)
	for i := range ans {
		if ans[i], ok = r.str(); !ok {
			return nil, nil, false
		}
	}
	labels := make([]int32, n)
	for i := range labels {
		v, ok := r.u32()
		if !ok {
			return nil, nil, false
		}
		labels[i] = int32(v)
	}
	return ans, labels, true
}

func (r *mcReader) task() (ChoiceTask, bool) {
	var t ChoiceTask
	var ok bool
	if t.Question, ok = r.str(); !ok {
		return t, false
	}
	if t.Answers, t.Labels, ok = r.answers(); !ok {
		return t, false
	}
	_, _, ok = r.answers() // mc2: read past, not scored
	return t, ok
}

// ParseMultipleChoice reads llama-perplexity's binary multiple-choice file
// (u32 task count, u32 byte offset of each task, then the tasks: question,
// then the mc1 and mc2 answer sets, strings as u32 length + bytes). With
// 0 < n < count it selects n tasks at random as b4748 does, reading each
// at its recorded offset; otherwise it reads all tasks in sequence.
func ParseMultipleChoice(data []byte, n int) ([]ChoiceTask, error) {
	r := &mcReader{b: data}
	count, ok := r.u32()
	if !ok || count == 0 {
		return nil, errors.New("no tasks")
	}
	if uint64(count)*4 > uint64(len(data)-r.off) {
		return nil, fmt.Errorf("%d task offsets do not fit in %d bytes", count, len(data))
	}
	pos := make([]uint32, count)
	for i := range pos {
		pos[i], _ = r.u32()
	}
	if n <= 0 || n >= int(count) {
		tasks := make([]ChoiceTask, count)
		for i := range tasks {
			t, ok := r.task()
			if !ok {
				return nil, fmt.Errorf("failed to read task %d of %d", i+1, count)
			}
			tasks[i] = t
		}
		return tasks, nil
	}
	var tasks []ChoiceTask
	for _, idx := range WinograndeOrder(int(count), n) {
		r.off = int(pos[idx])
		if int64(pos[idx]) > int64(len(data)) {
			return nil, fmt.Errorf("task %d: offset %d is past the end (%d bytes)", idx, pos[idx], len(data))
		}
		t, ok := r.task()
		if !ok {
			return nil, fmt.Errorf("failed to read task %d at position %d", idx, pos[idx])
		}
		tasks = append(tasks, t)
	}
	return tasks, nil
}

// MultipleChoice scores tasks as llama-perplexity --multiple-choice: each
// answer is scored as question + " " + answer by the mean log-probability
// of its tokens after the common prefix (summed in float32, unlike
// HellaSwag's double), the best answer counts when its label is 1, and the
// running accuracy is printed per task; then the final result and the
// random-chance accuracy with their standard errors.
func MultipleChoice(ctx context.Context, m Model, tok Tokenize, tasks []ChoiceTask, opt MCOptions) (*MCResult, error) {
	opt = opt.withDefaults()
	if len(tasks) == 0 {
		return nil, errors.New("no tasks")
	}
	out := opt.Out
	type prepared struct {
		seqs [][]int32
		cp   int
	}
	prep := make([]prepared, len(tasks))
	for i, t := range tasks {
		if t.Question == "" || len(t.Answers) == 0 {
			return nil, fmt.Errorf("task %d: empty question and/or answers", i+1)
		}
		p := prepared{}
		for _, a := range t.Answers {
			if a == "" {
				return nil, fmt.Errorf("task %d: empty answer", i+1)
			}
			s, err := tok(t.Question + " " + a)
			if err != nil {
				return nil, fmt.Errorf("task %d: %w", i+1, err)
			}
			p.seqs = append(p.seqs, s)
		}
		var required, bad int
		p.cp, required, bad = choicePrefix(p.seqs)
		if bad >= 0 {
			return nil, fmt.Errorf("task %d: an answer adds no token to the question", i+1)
		}
		if required > opt.NCtx {
			return nil, fmt.Errorf("task %d does not fit in the context window (%d tokens, -c %d)", i, required, opt.NCtx)
		}
		prep[i] = p
	}
	res := &MCResult{Kind: "multiple-choice", Tasks: len(tasks)}
	nAnswers := 0
	secs, err := scoreEach(ctx, m, opt, len(tasks), "\ntask\tacc_norm\n", func(c Context, nVocab, i int) error {
		t, p := tasks[i], prep[i]
		best, bestVal := 0, float32(0)
		for s, seq := range p.seqs {
			rows, err := decodeAll(c, seq, nVocab)
			if err != nil {
				return fmt.Errorf("task %d, answer %d: %w", i+1, s+1, err)
			}
			v := meanLogProb[float32](rows, nVocab, seq, p.cp)
			if s == 0 || v > bestVal {
				best, bestVal = s, v
			}
		}
		nAnswers += len(p.seqs)
		if t.Labels[best] == 1 {
			res.Correct++
		}
		res.Predicted = append(res.Predicted, best)
		fmt.Fprintf(out, "%d\t%.8f\n", i+1, 100.*float64(res.Correct)/float64(i+1))
		return nil
	})
	if err != nil {
		return nil, err
	}
	n := len(tasks)
	res.Accuracy = 100 * float64(res.Correct) / float64(n)
	res.Seconds = secs
	fmt.Fprintln(out)
	if n > 1 {
		p := float32(res.Correct) / float32(n)
		sigma := float32(math.Sqrt(float64(p * (1 - p) / float32(n-1))))
		res.StdErr, res.HasStdErr = float64(100*sigma), true
		fmt.Fprintf(out, "Final result: %.4f +/- %.4f\n", float64(100*p), float64(100*sigma))
		p = float32(n) / float32(nAnswers)
		sigma = float32(math.Sqrt(float64(p * (1 - p) / float32(n-1))))
		fmt.Fprintf(out, "Random chance: %.4f +/- %.4f\n", float64(100*p), float64(100*sigma))
	} else {
		fmt.Fprintf(out, "Final result: not measured (one task gives no standard error)\n")
	}
	return res, nil
}

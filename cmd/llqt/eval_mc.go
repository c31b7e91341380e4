package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/internal/cli"
	"github.com/llqt/llqt/perplexity"
)

type mcFlags struct {
	text    string
	nCtx    int
	tasks   int
	threads int
	kvF32   bool
	json    bool
	lora    loraFlags
	binFile string
}

// newMultipleChoiceCmds makes eval hellaswag and eval winogrande.
func newMultipleChoiceCmds() []*cobra.Command {
	mk := func(kind, short, long string, tasksFlag string, tasksDefault int) *cobra.Command {
		f := &mcFlags{}
		cmd := &cobra.Command{
			Use:   kind + " MODEL -f TASKS [-c 512]",
			Short: short,
			Long:  long,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return cli.RunCancellable(cmd.Context(), func(ctx context.Context) error {
					return runMultipleChoice(ctx, cmd, kind, args[0], f)
				})
			},
		}
		fl := cmd.Flags()
		fl.StringVarP(&f.text, "file", "f", "", "task file")
		fl.IntVarP(&f.nCtx, "ctx-size", "c", perplexity.DefaultNCtx, "most tokens of one task, all candidates together")
		fl.IntVar(&f.tasks, tasksFlag, tasksDefault, "number of tasks to score")
		fl.BoolVar(&f.kvF32, "kv-f32", false, "keep the KV cache in F32 instead of F16 (llama.cpp's default)")
		fl.BoolVar(&f.json, "json", false, "print one JSON object instead of the running output")
		addThreadsFlag(cmd, &f.threads)
		if kind == "multiple-choice" {
			fl.StringVar(&f.binFile, "binary-file", "", "task file, read as is (llama.cpp's -bf)")
		}
		withLoRA(cmd, &f.lora)
		return cmd
	}
	return []*cobra.Command{
		mk("hellaswag", "HellaSwag accuracy (acc_norm) as llama-perplexity --hellaswag computes it",
			`Score HellaSwag-format tasks as llama-perplexity --hellaswag (b4748): six lines
per task (context, gold ending 0-3, four endings); each ending is scored as
context + " " + ending by the mean log-probability of its tokens, and the
highest wins. Tasks are taken in llama.cpp's random order (std::mt19937 seeded
with 1, without replacement), even when all are used. Prints "task<TAB>acc_norm"
and the running accuracy after each task, as llama-perplexity does.`,
			"hellaswag-tasks", 400),
		mk("winogrande", "Winogrande accuracy as llama-perplexity --winogrande computes it",
			`Score Winogrande CSV tasks (index,sentence,option1,option2,answer) as
llama-perplexity --winogrande (b4748): the blank "_" is filled with each option
and the tokens after it are scored (after the common prefix when fewer than four
follow it). As b4748 reads -f, one trailing newline is dropped and a last line
that ends at the end of the file is not loaded. Prints per task the running
accuracy, both scores, the prediction and the answer; with 100 tasks or more
also the final score with its standard error. --winogrande-tasks N below the
task count picks N tasks at random as llama.cpp does.`,
			"winogrande-tasks", 0),
		mk("multiple-choice", "Multiple-choice accuracy as llama-perplexity --multiple-choice computes it",
			`Score tasks in llama-perplexity's binary multiple-choice format (b4748;
TruthfulQA and MMLU files made for llama.cpp): each answer is scored as
question + " " + answer by the mean log-probability of its tokens, and the task
counts as correct when the best answer's label is 1. Give the file with
--binary-file (read as is, like llama.cpp's -bf) or -f (which, as in llama.cpp,
drops one trailing newline byte). Prints the running accuracy per task, then the
final result and the random-chance accuracy.`,
			"multiple-choice-tasks", 0),
	}
}

func runMultipleChoice(ctx context.Context, cmd *cobra.Command, kind, modelPath string, f *mcFlags) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f.binFile != "" && f.text != "" {
		return fmt.Errorf("give -f or --binary-file, not both")
	}
	if f.text == "" && f.binFile == "" {
		return fmt.Errorf("no task file: give -f TASKS")
	}
	var text string
	if f.binFile != "" {
		raw, err := os.ReadFile(f.binFile)
		if err != nil {
			return fmt.Errorf("--binary-file: %w", err)
		}
		text, f.text = string(raw), f.binFile
	} else {
		raw, err := os.ReadFile(f.text)
		if err != nil {
			return fmt.Errorf("-f: %w", err)
		}
		text = perplexity.PrepareText(raw)
	}
	m, tk, err := loadModelTokenizer(modelPath, eval.Options{Threads: f.threads, KVF32: f.kvF32}, &f.lora)
	if err != nil {
		return err
	}
	defer m.Close()
	tokenize := func(s string) ([]int32, error) { return tk.Encode(s, true, false) }
	running := cli.NewRunningOutput(stdout, stderr, f.json)
	out := running.Writer()
	opt := perplexity.MCOptions{NCtx: f.nCtx, Tasks: f.tasks, Out: out}
	// Each kind parses its tasks and says how it runs them; loading,
	// progress and a failure's held output are handled the same for all.
	var run func(perplexity.MCOptions) (*perplexity.MCResult, error)
	var loaded string
	var nScored int
	switch kind {
	case "hellaswag":
		tasks, err := perplexity.ParseHellaSwag(text)
		if err != nil {
			return fmt.Errorf("%s: %w", f.text, err)
		}
		loaded = fmt.Sprintf("hellaswag_score : loaded %d tasks from prompt.\n", len(tasks))
		nScored = min(len(tasks), max(f.tasks, 1))
		run = func(opt perplexity.MCOptions) (*perplexity.MCResult, error) {
			return perplexity.HellaSwag(ctx, perplexity.FromEngine(m), tokenize, tasks, opt)
		}
	case "winogrande":
		tasks, skipped := perplexity.ParseWinogrande(text)
		for _, s := range skipped {
			fmt.Fprintf(stderr, "warning: %s: %s (skipped, as llama-perplexity does)\n", f.text, s)
		}
		if len(tasks) == 0 {
			return fmt.Errorf("%s: no tasks", f.text)
		}
		loaded = fmt.Sprintf("winogrande_score : loaded %d tasks from prompt.\n", len(tasks))
		nScored = len(tasks)
		run = func(opt perplexity.MCOptions) (*perplexity.MCResult, error) {
			return perplexity.Winogrande(ctx, perplexity.FromEngine(m), tokenize, tasks, opt)
		}
	case "multiple-choice":
		tasks, err := perplexity.ParseMultipleChoice([]byte(text), f.tasks)
		if err != nil {
			return fmt.Errorf("%s: %w", f.text, err)
		}
		loaded = fmt.Sprintf("multiple_choice_score: %d tasks selected\n", len(tasks))
		nScored = len(tasks)
		run = func(opt perplexity.MCOptions) (*perplexity.MCResult, error) {
			return perplexity.MultipleChoice(ctx, perplexity.FromEngine(m), tokenize, tasks, opt)
		}
	}
	if out != nil {
		fmt.Fprint(out, loaded)
	}
	bar := cli.NewCountProgress(stderr, int64(nScored), kind)
	opt.Progress = func(done, _ int) { bar.Set(int64(done)) }
	res, err := run(opt)
	bar.Finish()
	running.Release()
	if err != nil {
		return fmt.Errorf("%s: %w", f.text, err)
	}
	if f.json {
		return cli.JSON(stdout, struct {
			Model string `json:"model"`
			Tasks string `json:"task_file"`
			*perplexity.MCResult
		}{modelPath, f.text, res})
	}
	fmt.Fprintf(stdout, "%s: %d/%d correct = %.4f%% in %.2f s\n", kind, res.Correct, res.Tasks, res.Accuracy, res.Seconds)
	return nil
}

package main

import (
	"github.com/spf13/cobra"

	"github.com/llqt/llqt/internal/cli"
	"github.com/llqt/llqt/internal/inspect"
)

func newInspectCmd() *cobra.Command {
	var opt inspect.Options
	var asJSON bool
	var model string
	cmd := &cobra.Command{
		Use: "inspect PATH",
		Example: `  # metadata and tensors of a GGUF file
  llqt inspect model.gguf
  # check the file's structure; the exit status is 1 on any problem
  llqt inspect model.gguf --verify
  # a Hugging Face checkpoint, as JSON with each tensor's SHA-256
  llqt inspect ./Llama-3.2-1B --hash --json`,
		Short: "Show a model file's metadata and tensors; verify its structure or hash its tensors",
		Long: `inspect prints the metadata (arrays summarised), a table of tensors (name, type,
shape in ggml order, bytes) and a summary line (tensors, parameters, file size,
bits per weight) of a GGUF file, a .safetensors file or a Hugging Face checkpoint
directory.

--verify checks the structure (alignment, every tensor's range inside the file
and not overlapping another, sizes consistent with type and shape) and lists
every problem; the exit status is 1 when there is any. --hash adds each
tensor's SHA-256.`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, _, err := modelArgs(model, args, 0)
			if err != nil {
				return err
			}
			rep, err := inspect.Run(path, opt)
			if rep != nil {
				out := cmd.OutOrStdout()
				var werr error
				if asJSON {
					werr = cli.JSON(out, rep)
				} else {
					werr = inspect.WriteText(out, rep)
				}
				if err == nil {
					err = werr
				}
			}
			return err
		},
	}
	addModelFlag(cmd, &model)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().BoolVar(&opt.Verify, "verify", false, "check the file's structure and report each problem")
	cmd.Flags().BoolVar(&opt.Hash, "hash", false, "print each tensor's SHA-256")
	return cmd
}

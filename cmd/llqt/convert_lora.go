package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/convert"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/cli"
	"github.com/llqt/llqt/quant"
)

func newConvertLoraCmd() *cobra.Command {
	var base, outType, name string
	var force bool
	cmd := &cobra.Command{
		Use:   "convert-lora ADAPTER_DIR OUT.gguf --base HF_DIR",
		Short: "Convert a PEFT LoRA adapter to a GGUF adapter as convert_lora_to_gguf.py does",
		Long: `Convert a Hugging Face PEFT LoRA adapter (adapter_config.json and
adapter_model.safetensors) to a GGUF adapter, byte-identical to llama.cpp b4748's
convert_lora_to_gguf.py --base HF_DIR. Only the base model's config.json is read.

As in b4748, every LoRA tensor is stored as F32 whatever --outtype says: the
converter keeps F32 for tensor names that do not end in .weight, and LoRA
tensors end in .lora_a and .lora_b. The output is written atomically.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(convert.OutTypes, strings.ToLower(outType)) {
				return fmt.Errorf("--outtype %q: want one of %s", outType, strings.Join(convert.OutTypes, ", "))
			}
			res, err := convert.ConvertLora(args[0], convert.LoraOptions{BaseDir: base, Name: name})
			if err != nil {
				return err
			}
			defer res.Close()
			ctx, stop := cli.SignalContext(cmd.Context())
			err = gguf.WriteFile(ctx, args[1], res.Model, gguf.WriteOptions{Codec: quant.Codec{}, Threads: 1, Overwrite: force})
			if err := cli.Interrupted(err, stop()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: LoRA adapter, %d tensors (F32)\n", args[1], len(res.Model.Tensors))
			return nil
		},
	}
	cmd.Flags().StringVar(&base, "base", "", "base model directory (config.json)")
	cmd.Flags().StringVar(&outType, "outtype", "f16", "accepted for convert_lora_to_gguf.py compatibility; b4748 writes LoRA tensors as F32 for every type")
	cmd.Flags().StringVar(&name, "name", "", "general.name (default: the adapter folder's name in title form)")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "overwrite OUT if it exists")
	return cmd
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/cli"
)

func newMetaCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "meta",
		Short: "Read and edit a GGUF file's metadata (get, set, delete, dump)",
		Long: `Read and edit GGUF metadata.

An edit is made in place when the new header still ends inside the padding
before the tensor data, so no tensor moves; otherwise the file is rewritten
atomically (a temporary file beside it, tensors copied byte for byte, renamed
over the original when complete). The command says which happened.

Values are TYPE:VALUE with TYPE one of uint8, int8, uint16, int16, uint32,
int32, float32, bool, string, uint64, int64, float64 (or u8 … f64, str, and
llama.cpp's int and float). A key that exists keeps its place; a new key is
appended.`,
	}
	cmd.AddCommand(newMetaGetCmd(), newMetaSetCmd(), newMetaDeleteCmd(), newMetaDumpCmd())
	return cmd
}

// metaFileCmd makes one of meta's subcommands, which all take FILE as the
// first argument and --json; run gets the arguments and whether --json was
// given.
func metaFileCmd(use, short string, args cobra.PositionalArgs, jsonUsage string,
	run func(cmd *cobra.Command, args []string, asJSON bool) error) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE:  func(cmd *cobra.Command, args []string) error { return run(cmd, args, asJSON) },
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, jsonUsage)
	return cmd
}

// withGGUF opens the GGUF file at path for use, and closes it after.
func withGGUF(path string, use func(f *gguf.File) error) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return use(f)
}

func newMetaGetCmd() *cobra.Command {
	return metaFileCmd("get FILE KEY", "Print one metadata value (strings raw, arrays as JSON)", cobra.ExactArgs(2),
		"print {key, type, value} as JSON", func(cmd *cobra.Command, args []string, asJSON bool) error {
			return withGGUF(args[0], func(f *gguf.File) error {
				v, ok := f.KV.Get(args[1])
				if !ok {
					return fmt.Errorf("%s: %s: %w", args[0], args[1], gguf.ErrNoKey)
				}
				w := cmd.OutOrStdout()
				if asJSON {
					return cli.JSON(w, kvJSON(formats.KV{Key: args[1], Value: v}))
				}
				if s, ok := v.(string); ok {
					_, err := io.WriteString(w, s+"\n")
					return err
				}
				_, err := fmt.Fprintln(w, formatValue(v, -1))
				return err
			})
		})
}

func newMetaSetCmd() *cobra.Command {
	var fromFile string
	cmd := metaFileCmd("set FILE KEY TYPE:VALUE | set FILE KEY --from-file PATH",
		"Set a metadata value (a string from a file with --from-file, e.g. tokenizer.chat_template)", cobra.RangeArgs(2, 3),
		"report as JSON", func(cmd *cobra.Command, args []string, asJSON bool) error {
			var v any
			switch {
			case fromFile != "" && len(args) == 3:
				return errors.New("give either TYPE:VALUE or --from-file, not both")
			case fromFile != "":
				b, err := os.ReadFile(fromFile)
				if err != nil {
					return err
				}
				v = string(b)
			case len(args) == 3:
				var err error
				if v, err = formats.ParseTypedValue(args[2]); err != nil {
					return err
				}
			default:
				return errors.New("missing TYPE:VALUE (or --from-file PATH)")
			}
			key := args[1]
			return runMetaEdit(cmd, args[0], asJSON, "set "+key, func(kv *formats.KVs) error {
				if key == "" {
					return errors.New("empty key")
				}
				kv.Set(key, v)
				return nil
			})
		})
	cmd.Flags().StringVar(&fromFile, "from-file", "", "set KEY to the contents of this file, as a string")
	return cmd
}

func newMetaDeleteCmd() *cobra.Command {
	return metaFileCmd("delete FILE KEY", "Remove a metadata key", cobra.ExactArgs(2),
		"report as JSON", func(cmd *cobra.Command, args []string, asJSON bool) error {
			key := args[1]
			return runMetaEdit(cmd, args[0], asJSON, "deleted "+key, func(kv *formats.KVs) error {
				if _, ok := kv.Get(key); !ok {
					return fmt.Errorf("%s: %w", key, gguf.ErrNoKey)
				}
				kv.Delete(key)
				return nil
			})
		})
}

type metaEditReport struct {
	File          string  `json:"file"`
	Edit          string  `json:"edit"`
	Mode          string  `json:"mode"` // "in-place", "rewritten" or "unchanged"
	OldHeader     int64   `json:"old_header_bytes"`
	NewHeader     int64   `json:"new_header_bytes"`
	DataOffset    int64   `json:"data_offset"`
	NewDataOffset int64   `json:"new_data_offset"`
	Seconds       float64 `json:"seconds"`
}

func runMetaEdit(cmd *cobra.Command, path string, asJSON bool, what string, edit func(*formats.KVs) error) error {
	ctx, stop := cli.SignalContext(cmd.Context())
	start := time.Now()
	res, err := gguf.EditMetadata(ctx, path, edit)
	if err := cli.Interrupted(err, stop()); err != nil {
		return err
	}
	rep := metaEditReport{File: path, Edit: what, OldHeader: res.OldHeader, NewHeader: res.NewHeader,
		DataOffset: res.DataOffset, NewDataOffset: res.NewDataOffset, Seconds: time.Since(start).Seconds()}
	switch {
	case res.Unchanged:
		rep.Mode = "unchanged"
	case res.InPlace:
		rep.Mode = "in-place"
	default:
		rep.Mode = "rewritten"
	}
	w := cmd.OutOrStdout()
	if asJSON {
		return cli.JSON(w, rep)
	}
	switch rep.Mode {
	case "unchanged":
		fmt.Fprintf(w, "%s: %s: value already set, file not written\n", path, what)
	case "in-place":
		fmt.Fprintf(w, "%s: %s in place (header %d → %d bytes, fits before the tensor data at %d)\n",
			path, what, rep.OldHeader, rep.NewHeader, rep.DataOffset)
	default:
		fmt.Fprintf(w, "%s: %s; rewrote the file (header %d → %d bytes, tensor data moved from %d to %d, tensors copied)\n",
			path, what, rep.OldHeader, rep.NewHeader, rep.DataOffset, rep.NewDataOffset)
	}
	return nil
}

func newMetaDumpCmd() *cobra.Command {
	return metaFileCmd("dump FILE", "Print all metadata and the tensor list", cobra.ExactArgs(1),
		"print everything as JSON (arrays in full)", func(cmd *cobra.Command, args []string, asJSON bool) error {
			return withGGUF(args[0], func(f *gguf.File) error { return dumpMeta(cmd.OutOrStdout(), f, asJSON) })
		})
}

type kvJSONEntry struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Elem  string `json:"element_type,omitempty"`
	Value any    `json:"value"`
}

func kvJSON(kv formats.KV) kvJSONEntry {
	t, _ := formats.TypeOf(kv.Value)
	e := kvJSONEntry{Key: kv.Key, Type: t.String(), Value: jsonSafe(kv.Value)}
	if a, ok := kv.Value.(formats.Array); ok {
		e.Elem = a.Elem.String()
	}
	return e
}

// jsonSafe makes a metadata value encodable: arrays become their slices
// and non-finite floats strings (JSON has no NaN or Inf).
func jsonSafe(v any) any {
	switch x := v.(type) {
	case float32:
		return floatJSON(float64(x))
	case float64:
		return floatJSON(x)
	case formats.Array:
		switch vs := x.Values.(type) {
		case []float32:
			out := make([]any, len(vs))
			for i, f := range vs {
				out[i] = floatJSON(float64(f))
			}
			return out
		case []float64:
			out := make([]any, len(vs))
			for i, f := range vs {
				out[i] = floatJSON(f)
			}
			return out
		case []formats.Array:
			out := make([]any, len(vs))
			for i, a := range vs {
				out[i] = jsonSafe(a)
			}
			return out
		case []uint8: // encoding/json would write base64
			out := make([]int, len(vs))
			for i, b := range vs {
				out[i] = int(b)
			}
			return out
		}
		return x.Values
	}
	return v
}

func floatJSON(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Sprint(f)
	}
	return f
}

// formatValue renders a value on one line; arrays show at most limit
// elements (all when limit < 0).
func formatValue(v any, limit int) string {
	a, ok := v.(formats.Array)
	if !ok {
		if s, isStr := v.(string); isStr {
			return fmt.Sprintf("%q", s)
		}
		return fmt.Sprint(v)
	}
	b, err := json.Marshal(jsonSafe(a))
	if err != nil {
		return fmt.Sprintf("[%d × %s]", a.Len(), a.Elem)
	}
	if limit >= 0 && a.Len() > limit {
		var head []any
		_ = json.Unmarshal(b, &head)
		hb, _ := json.Marshal(head[:limit])
		return fmt.Sprintf("%s… (%d × %s)", strings.TrimSuffix(string(hb), "]"), a.Len(), a.Elem)
	}
	return string(b)
}

func dumpMeta(w io.Writer, f *gguf.File, asJSON bool) error {
	if asJSON {
		type tensorEntry struct {
			Name   string   `json:"name"`
			Type   string   `json:"type"`
			Shape  []uint64 `json:"shape"`
			Offset uint64   `json:"offset"`
			Bytes  uint64   `json:"bytes"`
		}
		out := struct {
			File       string        `json:"file"`
			Version    uint32        `json:"version"`
			Alignment  uint64        `json:"alignment"`
			DataOffset int64         `json:"data_offset"`
			KV         []kvJSONEntry `json:"metadata"`
			Tensors    []tensorEntry `json:"tensors"`
		}{File: f.Path, Version: f.Version, Alignment: f.Alignment, DataOffset: f.DataOffset}
		for _, kv := range f.KV {
			out.KV = append(out.KV, kvJSON(kv))
		}
		for _, t := range f.Tensors {
			out.Tensors = append(out.Tensors, tensorEntry{t.Name, t.Type.String(), t.Shape, t.Offset, t.Size})
		}
		return cli.JSON(w, out)
	}
	fmt.Fprintf(w, "%s: GGUF v%d, %d metadata keys, %d tensors, data at %d (alignment %d)\n",
		f.Path, f.Version, len(f.KV), len(f.Tensors), f.DataOffset, f.Alignment)
	for i, kv := range f.KV {
		t, _ := formats.TypeOf(kv.Value)
		typ := t.String()
		if a, ok := kv.Value.(formats.Array); ok {
			typ = "[" + a.Elem.String() + "]"
		}
		val := formatValue(kv.Value, 8)
		if s, ok := kv.Value.(string); ok && len(s) > 200 {
			val = fmt.Sprintf("%q… (%d bytes)", s[:200], len(s))
		}
		fmt.Fprintf(w, "%4d: %-10s %s = %s\n", i+1, typ, kv.Key, val)
	}
	for i, t := range f.Tensors {
		fmt.Fprintf(w, "%4d: tensor %-32s %-7s %v\n", i+1, t.Name, t.Type, t.Shape)
	}
	return nil
}

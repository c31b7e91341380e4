package main

import (
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats"
)

func TestParseQuantizeArgs(t *testing.T) {
	for _, tc := range []struct {
		args    string
		want    quantizeArgs
		wantErr string
	}{
		{"in.gguf out.gguf Q4_K_M", quantizeArgs{in: "in.gguf", out: "out.gguf", typeName: "Q4_K_M"}, ""},
		{"in.gguf out.gguf q8_0 4", quantizeArgs{in: "in.gguf", out: "out.gguf", typeName: "q8_0", threads: 4}, ""},
		{"in.gguf Q4_K_M", quantizeArgs{in: "in.gguf", typeName: "Q4_K_M"}, ""},
		{"in.gguf 15 3", quantizeArgs{in: "in.gguf", typeName: "15", threads: 3}, ""},
		{"in.gguf out.gguf", quantizeArgs{in: "in.gguf", out: "out.gguf"}, ""},
		{"in.gguf out.gguf Q8_0 0", quantizeArgs{in: "in.gguf", out: "out.gguf", typeName: "Q8_0", threads: runtime.NumCPU()}, ""},
		{"in.gguf", quantizeArgs{}, "no OUT or TYPE after IN"},
		{"in.gguf out.gguf Q9_9", quantizeArgs{}, "unknown quantization type"},
		{"in.gguf out.gguf Q8_0 many", quantizeArgs{}, "nthreads \"many\""},
		{"in.gguf Q8_0 2 3", quantizeArgs{}, "too many arguments"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			got, err := parseQuantizeArgs(strings.Fields(tc.args))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseOverrideKV(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    formats.KV
		wantErr string
	}{
		{"general.name=str:My model", formats.KV{Key: "general.name", Value: "My model"}, ""},
		{"llama.context_length=int:4096", formats.KV{Key: "llama.context_length", Value: int32(4096)}, ""},
		{"x.eps=float:1e-5", formats.KV{Key: "x.eps", Value: float32(1e-5)}, ""},
		{"x.flag=bool:true", formats.KV{Key: "x.flag", Value: true}, ""},
		{"x.flag=bool:yes", formats.KV{}, "true or false"},
		{"x.n=int:99999999999", formats.KV{}, "32-bit integer"},
		{"x.f=float:nan", formats.KV{}, "finite"},
		{"novalue", formats.KV{}, "KEY=TYPE:VALUE"},
		{"k=4096", formats.KV{}, "TYPE:VALUE"},
		{"k=u8:1", formats.KV{}, "not int, float, bool or str"},
		{"k=str:" + strings.Repeat("a", 128), formats.KV{}, "127 bytes"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseOverrideKV(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, %v; want %#v", got, err, tc.want)
			}
		})
	}
}

func TestFilterImatrix(t *testing.T) {
	w := map[string][]float32{"blk.0.attn_q.weight": {1}, "blk.0.ffn_down.weight": {2}, "output.weight": {3}}
	for _, tc := range []struct {
		name             string
		include, exclude []string
		want             []string
	}{
		{"all", nil, nil, []string{"blk.0.attn_q.weight", "blk.0.ffn_down.weight", "output.weight"}},
		{"include", []string{"attn"}, nil, []string{"blk.0.attn_q.weight"}},
		{"exclude", nil, []string{"blk."}, []string{"output.weight"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := filterImatrix(w, tc.include, tc.exclude)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d entries, want %v", len(got), tc.want)
			}
			for _, k := range tc.want {
				if _, ok := got[k]; !ok {
					t.Errorf("%s missing", k)
				}
			}
		})
	}
}

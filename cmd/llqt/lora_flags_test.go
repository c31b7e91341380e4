package main

import (
	"testing"
)

func TestLoraScaledArgs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		set    []string // --lora-scaled values, in order; "+" prefix: --lora
		args   []string
		rest   []string
		scales []float32
		err    bool
	}{
		{"plain", []string{"+a.gguf"}, []string{"m.gguf"}, []string{"m.gguf"}, []float32{1}, false},
		{"scaled", []string{"a.gguf"}, []string{"m.gguf", "0.5"}, []string{"m.gguf"}, []float32{0.5}, false},
		{"two", []string{"a.gguf", "+b.gguf", "c.gguf"}, []string{"base", "2", "out", "0.25"}, []string{"base", "out"}, []float32{2, 1, 0.25}, false},
		{"comma", []string{"a.gguf,-0.5"}, []string{"m"}, []string{"m"}, []float32{-0.5}, false},
		{"missing", []string{"a.gguf"}, []string{"m.gguf"}, nil, nil, true},
	} {
		var l loraFlags
		for _, s := range tc.set {
			var err error
			if s[0] == '+' {
				err = loraValue{&l}.Set(s[1:])
			} else {
				err = loraScaledValue{&l}.Set(s)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		rest, err := l.takeScales(tc.args)
		if (err != nil) != tc.err {
			t.Fatalf("%s: error %v", tc.name, err)
		}
		if tc.err {
			continue
		}
		if len(rest) != len(tc.rest) {
			t.Fatalf("%s: rest %v, want %v", tc.name, rest, tc.rest)
		}
		for i := range rest {
			if rest[i] != tc.rest[i] {
				t.Fatalf("%s: rest %v, want %v", tc.name, rest, tc.rest)
			}
		}
		for i, la := range l.list {
			if la.scale != tc.scales[i] {
				t.Errorf("%s: adapter %d scale %v, want %v", tc.name, i, la.scale, tc.scales[i])
			}
		}
	}
}

func FuzzLoraScaledArgs(f *testing.F) {
	f.Add("a.gguf,0.5", "m", "1")
	f.Add("a.gguf", "m", "x")
	f.Fuzz(func(t *testing.T, v, a1, a2 string) {
		var l loraFlags
		if err := (loraScaledValue{&l}).Set(v); err != nil {
			return
		}
		rest, err := l.takeScales([]string{a1, a2})
		if err != nil {
			return
		}
		if len(rest) > 2 || l.list[0].scale == float32(nanPending) {
			t.Fatalf("rest %v, scale %v", rest, l.list[0].scale)
		}
	})
}

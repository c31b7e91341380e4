package formats

import (
	"strings"
	"testing"
)

func TestParseOverrideKV(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want KV
		err  bool
	}{
		{"a.b=int:42", KV{"a.b", int32(42)}, false},
		{"a=int:-7", KV{"a", int32(-7)}, false},
		{"a=float:0.5", KV{"a", float32(0.5)}, false},
		{"a=bool:true", KV{"a", true}, false},
		{"a=bool:false", KV{"a", false}, false},
		{"a=str:x=y:z", KV{"a", "x=y:z"}, false},
		{"a=str:", KV{"a", ""}, false},
		{"a=bool:1", KV{}, true},
		{"a=int:12x", KV{}, true},
		{"a=u32:1", KV{}, true},
		{"a", KV{}, true},
		{"=int:1", KV{}, true},
		{"a=int", KV{}, true},
		{strings.Repeat("k", 128) + "=int:1", KV{}, true},
		{"a=str:" + strings.Repeat("v", 128), KV{}, true},
	} {
		got, err := ParseOverrideKV(tc.in)
		if (err != nil) != tc.err || (err == nil && got != tc.want) {
			t.Errorf("ParseOverrideKV(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func FuzzParseOverrideKV(f *testing.F) {
	for _, s := range []string{"a=int:1", "b=float:1e3", "c=bool:true", "d=str:hi", "=", "x=y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kv, err := ParseOverrideKV(s)
		if err != nil {
			return
		}
		if kv.Key == "" || len(kv.Key) >= 128 || !strings.HasPrefix(s, kv.Key+"=") {
			t.Fatalf("%q gave key %q", s, kv.Key)
		}
		if _, err := TypeOf(kv.Value); err != nil {
			t.Fatal(err)
		}
	})
}

package formats

import "testing"

func TestParseTypedValue(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
		err  bool
	}{
		{"str:hello: world", "hello: world", false},
		{"string:", "", false},
		{"u32:4096", uint32(4096), false},
		{"uint32:0x10", uint32(16), false},
		{"i32:-5", int32(-5), false},
		{"int:7", int32(7), false},
		{"u8:255", uint8(255), false},
		{"u8:256", nil, true},
		{"i8:-129", nil, true},
		{"u16:65535", uint16(65535), false},
		{"i16:-2", int16(-2), false},
		{"u64:18446744073709551615", uint64(18446744073709551615), false},
		{"i64:-9", int64(-9), false},
		{"f32:1e-5", float32(1e-5), false},
		{"float:0.5", float32(0.5), false},
		{"f64:2.5", 2.5, false},
		{"bool:true", true, false},
		{"bool:yes", nil, true},
		{"u32:-1", nil, true},
		{"u32:1.5", nil, true},
		{"nope:1", nil, true},
		{"plain", nil, true},
	} {
		got, err := ParseTypedValue(tc.in)
		if (err != nil) != tc.err || (err == nil && got != tc.want) {
			t.Errorf("ParseTypedValue(%q) = %v (%T), %v; want %v (%T), error %v", tc.in, got, got, err, tc.want, tc.want, tc.err)
		}
	}
}

func FuzzParseTypedValue(f *testing.F) {
	for _, s := range []string{"str:x", "u32:1", "f32:1e9", "bool:false", "i8:-128", "u64:0x1", ":", "a:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseTypedValue(s)
		if err != nil {
			return
		}
		if _, err := TypeOf(v); err != nil {
			t.Fatalf("%q parsed to a value with no GGUF type: %v", s, err)
		}
	})
}

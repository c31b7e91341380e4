package tokenizer

import "testing"

func TestNFC(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain ascii", "plain ascii"},
		{"e\u0301", "\u00e9"},
		{"\u212b", "\u00c5"},             // Angstrom sign → Å
		{"A\u030a", "\u00c5"},            // A + ring above
		{"\u1e0b\u0323", "\u1e0d\u0307"}, // d-dot-above + dot-below reorders
		{"\u1100\u1161\u11a8", "\uac01"}, // Hangul jamo → syllable
		{"\u00e9", "\u00e9"},
		{"a\u0328\u0301", "\u0105\u0301"}, // ogonek (202) before acute (230)
		{"\u0344", "\u0308\u0301"},        // excluded composite stays decomposed
		{"Cửa Việt", "Cửa Việt"},
	}
	for _, c := range cases {
		if got := nfc(c.in); got != c.want {
			t.Errorf("nfc(%+q) = %+q, want %+q", c.in, got, c.want)
		}
	}
}

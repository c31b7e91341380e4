package cpuinfo

import (
	"runtime"
	"testing"
)

func TestModelFrom(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"x86", "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel\t\t: 207\nmodel name\t: Intel(R) Xeon(R) Processor\n", "Intel(R) Xeon(R) Processor"},
		{"arm", "processor\t: 0\nBogoMIPS\t: 50.00\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n", "Raspberry Pi 4 Model B Rev 1.4"},
		{"empty value", "model name\t: \n", runtime.GOARCH},
		{"nothing", "", runtime.GOARCH},
	} {
		if got := modelFrom(tc.in); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	if Model() == "" {
		t.Error("Model() is empty")
	}
}

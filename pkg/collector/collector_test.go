package collector

import "testing"

func TestParseLSN(t *testing.T) {
	cases := []struct {
		in   string
		want LSN
		ok   bool
	}{
		{"", 0, true},
		{"0/0", 0, true},
		{"0/3000060", 0x3000060, true},
		{"16/B374D848", 0x16B374D848, true},
		{"FFFFFFFF/FFFFFFFF", 0xFFFFFFFFFFFFFFFF, true},
		{"3000060", 0, false},
		{"x/1", 0, false},
		{"1/y", 0, false},
		{"100000000/0", 0, false},
		{"1/", 0, false},
		{"/1", 0, false},
		{"1/2/3", 0, false},
		{"a/-1", 0, false},
	}
	for _, tc := range cases {
		got, err := ParseLSN(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseLSN(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if b, err := parseLSN([]byte(tc.in)); b != got || (err == nil) != tc.ok {
			t.Errorf("parseLSN(%q) = %v, %v; ParseLSN gives %v", tc.in, b, err, got)
		}
		if tc.ok && tc.in != "" && got.String() != tc.in {
			t.Errorf("%q prints as %q", tc.in, got.String())
		}
	}
}

// TestParseLSNBytes: the probe's LSN parser reads what ParseLSN reads.
func TestParseLSNBytes(t *testing.T) {
	for _, in := range []string{"0000000001/00000000000000002", "00000000000000001/2", "ffffffff/FFFFFFFF", "1/g", " 1/2"} {
		want, werr := ParseLSN(in)
		if got, err := parseLSN([]byte(in)); got != want || (err == nil) != (werr == nil) {
			t.Errorf("parseLSN(%q) = %v, %v; ParseLSN gives %v, %v", in, got, err, want, werr)
		}
	}
}

func TestSampleLSN(t *testing.T) {
	p := &Sample{CurrentLSN: 10}
	s := &Sample{InRecovery: true, ReceiveLSN: 7, ReplayLSN: 9}
	if p.LSN() != 10 || s.LSN() != 9 {
		t.Fatalf("primary %v standby %v", p.LSN(), s.LSN())
	}
}

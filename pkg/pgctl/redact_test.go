package pgctl

import "testing"

func TestRedactArgs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`host=h port=5 user=u password='s3cr\'et x' application_name=a`, `host=h port=5 user=u password=REDACTED application_name=a`},
		{`host=h password=plain user=u`, `host=h password=REDACTED user=u`},
		{`host=h password = 'a b'`, `host=h password=REDACTED`},
		{`postgresql://u:pw@h:5/db`, `postgresql://u:REDACTED@h:5/db`},
		{`-D /data`, `-D /data`},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestRun_ErrorHidesPassword: a failed program's error names its
// arguments, never a password among them.
func TestRun_ErrorHidesPassword(t *testing.T) {
	r := &Runner{}
	_, err := r.Run(t.Context(), "false", "--source-server", "host=h password='hunter22'")
	if err == nil {
		t.Fatal("false succeeded")
	}
	if got := err.Error(); contains(got, "hunter22") {
		t.Fatalf("error shows the password: %s", got)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

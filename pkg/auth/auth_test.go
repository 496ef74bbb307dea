package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScopes(t *testing.T) {
	for _, name := range []string{"read", "operate", "admin"} {
		s, err := ParseScope(name)
		if err != nil || s.String() != name {
			t.Fatalf("ParseScope(%q) = %v, %v", name, s, err)
		}
	}
	for _, bad := range []string{"", "open", "Admin", "root"} {
		if _, err := ParseScope(bad); err == nil {
			t.Fatalf("ParseScope(%q) accepted", bad)
		}
	}
	cases := []struct {
		have, need Scope
		ok         bool
	}{
		{Read, Open, true}, {Read, Read, true}, {Read, Operate, false}, {Read, Admin, false},
		{Operate, Read, true}, {Operate, Operate, true}, {Operate, Admin, false},
		{Admin, Read, true}, {Admin, Operate, true}, {Admin, Admin, true},
	}
	for _, c := range cases {
		if got := c.have.Covers(c.need); got != c.ok {
			t.Errorf("%v.Covers(%v) = %v, want %v", c.have, c.need, got, c.ok)
		}
	}
}

func TestSecretsAndHashes(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret()
	if a == b || !WellFormed(a) || !WellFormed(b) {
		t.Fatalf("secrets %q %q", a, b)
	}
	for _, bad := range []string{"", "cmt_", a[:len(a)-1], "xyz_" + a[4:], a[:10] + "!" + a[11:]} {
		if WellFormed(bad) {
			t.Errorf("WellFormed(%q)", bad)
		}
	}
	h := Hash(a)
	if !ValidHash(h) || h == Hash(b) || strings.Contains(h, a) {
		t.Fatalf("hash %q", h)
	}
	if ValidHash(strings.ToUpper(h)) || ValidHash(h[1:]) || ValidHash("") {
		t.Fatal("ValidHash accepted a malformed hash")
	}
}

func TestTokenFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.token")
	if _, err := ReadTokenFile(path); !errors.Is(err, ErrNoTokenFile) {
		t.Fatalf("missing file: %v", err)
	}
	s, _ := NewSecret()
	if err := WriteTokenFile(path, s); err != nil {
		t.Fatal(err)
	}
	if err := WriteTokenFile(path, s); err == nil {
		t.Fatal("WriteTokenFile replaced an existing file")
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	got, err := ReadTokenFile(path)
	if err != nil || got != s {
		t.Fatalf("ReadTokenFile = %q, %v", got, err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTokenFile(path); err == nil || !strings.Contains(err.Error(), "0640") {
		t.Fatalf("group-readable file: %v", err)
	}
	bad := filepath.Join(dir, "bad.token")
	if err := os.WriteFile(bad, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTokenFile(bad); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("malformed file: %v", err)
	}
}

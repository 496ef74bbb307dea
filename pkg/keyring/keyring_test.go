package keyring

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func rawKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestSealOpen(t *testing.T) {
	k, err := New(rawKey(1))
	if err != nil {
		t.Fatal(err)
	}
	s, err := k.Seal("cluster/a/pg_password", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s, "s3cret") || !Sealed(s) || !strings.HasPrefix(s, Prefix+k.Current()+":") {
		t.Fatalf("sealed value %q", s)
	}
	again, _ := k.Seal("cluster/a/pg_password", "s3cret")
	if again == s {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	if got, err := k.Open("cluster/a/pg_password", s); err != nil || got != "s3cret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := k.Open("cluster/b/pg_password", s); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("moved to another purpose: %v", err)
	}
	if _, err := k.Open("cluster/a/pg_password", s[:len(s)-2]+"AA"); err == nil {
		t.Fatal("a damaged value opened")
	}
	if _, err := k.Open("p", "s3cret"); err == nil || !strings.Contains(err.Error(), "not sealed") {
		t.Fatalf("clear value: %v", err)
	}
	if e, err := k.Seal("p", ""); e != "" || err != nil {
		t.Fatalf("empty sealed to %q, %v", e, err)
	}
	if e, err := k.Open("p", ""); e != "" || err != nil {
		t.Fatalf("empty opened to %q, %v", e, err)
	}
}

func TestRotation(t *testing.T) {
	old, _ := New(rawKey(1))
	s, _ := old.Seal("p", "pw")
	both, err := New(rawKey(2), rawKey(1))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := both.Open("p", s); err != nil || got != "pw" {
		t.Fatalf("the old key no longer opens: %q %v", got, err)
	}
	s2, _ := both.Seal("p", "pw")
	if id, _, _ := Parse(s2); id != both.Current() || id == old.Current() {
		t.Fatalf("sealed with %s, want the new key %s", id, both.Current())
	}
	if _, err := old.Open("p", s2); err == nil || !strings.Contains(err.Error(), "does not hold") || !strings.Contains(err.Error(), both.Current()) {
		t.Fatalf("a keyring without the new key: %v", err)
	}
	if _, err := New(rawKey(1), rawKey(1)); err == nil {
		t.Fatal("a key twice was accepted")
	}
	if ids := both.IDs(); len(ids) != 2 || ids[0] != both.Current() || ids[1] != old.Current() {
		t.Fatalf("IDs %v", ids)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.key")
	k, created, err := LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("LoadOrCreate = %v %v", created, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o", fi.Mode().Perm())
	}
	k2, created, err := LoadOrCreate(path)
	if err != nil || created || k2.Current() != k.Current() {
		t.Fatalf("second LoadOrCreate = %v %v %v", created, err, k2.Current())
	}

	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	line1, _ := NewKey()
	line2, _ := NewKey()
	two, err := Load(write("two.key", "# new first\n"+line2+"\n\n"+line1+"\n", 0o600))
	if err != nil || len(two.IDs()) != 2 {
		t.Fatalf("two keys: %v %v", two, err)
	}
	for _, c := range []struct{ name, body, want string }{
		{"open.key", line1 + "\n", "mode 0644"},
		{"bad.key", "not-a-key\n", "line 1: not a key"},
		{"short.key", "AAAA\n", "line 1: not a key"},
		{"empty.key", "# nothing\n", "holds no key"},
		{"twice.key", line1 + "\n" + line1 + "\n", "appears twice"},
	} {
		mode := os.FileMode(0o600)
		if c.name == "open.key" {
			mode = 0o644
		}
		if _, err := Load(write(c.name, c.body, mode)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "no secret key file") {
		t.Errorf("missing: %v", err)
	}
}

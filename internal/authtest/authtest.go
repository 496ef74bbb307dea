// Package authtest gives test groups their admin token (a fixed secret,
// written to a token file each replica reads at its first election) and
// their secret key (the same for every replica of a group).
package authtest

import (
	"bytes"
	"encoding/base64"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/clustermgr/clustermgr/pkg/keyring"
)

// AdminToken is the test groups' admin token.
const AdminToken = "cmt_testAdminTokenOfTheTestHarnessOnly000000000"

// TokenFile writes AdminToken to a new file (mode 0600) and returns its
// path.
func TokenFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(path, []byte(AdminToken+"\n"), 0o600); err != nil {
		t.Fatalf("write admin token file: %v", err)
	}
	return path
}

// SecretKey is the test groups' secret key (a line of a key file).
const SecretKey = "dGVzdCBzZWNyZXQga2V5IG9mIHRoZSBoYXJuZXNzISE="

// Keyring is the test groups' keyring: SecretKey alone.
func Keyring() *keyring.Keyring {
	raw, err := base64.StdEncoding.DecodeString(SecretKey)
	if err != nil {
		panic(err)
	}
	k, err := keyring.New(raw)
	if err != nil {
		panic(err)
	}
	return k
}

// KeyFile writes SecretKey to a new key file (mode 0600) and returns its
// path.
func KeyFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret.key")
	if err := os.WriteFile(path, []byte(SecretKey+"\n"), 0o600); err != nil {
		t.Fatalf("write secret key file: %v", err)
	}
	return path
}

// NoFileHolds fails the test for every file under dir that holds secret,
// and returns how many files it read (so that a caller can tell that it
// looked at something).
func NoFileHolds(t testing.TB, dir, secret string) (files int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("%s holds the secret %.6s… in clear", path, secret)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	return files
}

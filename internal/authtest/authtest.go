// Package authtest gives test groups their admin token: a fixed secret,
// written to a token file each replica reads at its first election.
package authtest

import (
	"os"
	"path/filepath"
	"testing"
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

package faults

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// buildBinary builds clustermgr once into dir.
func buildBinary(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "clustermgr")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/clustermgr/clustermgr/cmd/clustermgr")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

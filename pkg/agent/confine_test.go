package agent_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/clustermgr/clustermgr/internal/pgtest"
)

// TestAgent_ActsOnlyOnWhatItOwns: a symlink inside the data root that
// points outside it is refused, and a postmaster.pid planted in a data
// directory naming another process gets that process no signal.
func TestAgent_ActsOnlyOnWhatItOwns(t *testing.T) {
	e := pgtest.NewEnv(t)
	dir := e.Dir
	root := filepath.Join(dir, "root")
	outside := filepath.Join(dir, "outside", "data")
	for _, d := range []string{root, outside} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	c := startRootedAgent(t, e, root)
	ctx := context.Background()

	// A link inside the root to a directory outside it, and one to
	// another node's directory inside it (a second name for its data).
	link := filepath.Join(root, "escape")
	if err := os.Symlink(filepath.Dir(outside), link); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(root, "pg0", "data")
	if err := os.MkdirAll(other, 0o700); err != nil {
		t.Fatal(err)
	}
	alias := filepath.Join(root, "alias")
	if err := os.Symlink(filepath.Join(root, "pg0"), alias); err != nil {
		t.Fatal(err)
	}
	victim := exec.Command("sleep", "60")
	victim.Dir = dir
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- victim.Wait() }()
	defer func() {
		_ = victim.Process.Kill()
		<-done
	}()
	pid := []byte(strconv.Itoa(victim.Process.Pid) + "\n")
	if err := os.WriteFile(filepath.Join(outside, "postmaster.pid"), pid, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"stop through the link", func() error { _, err := c.Stop(ctx, filepath.Join(link, "data"), 1, "kill"); return err }, "once its symlinks are resolved"},
		{"purge through the link", func() error { return c.Purge(ctx, filepath.Join(link, "data"), 1) }, "once its symlinks are resolved"},
		{"status outside", func() error { _, err := c.Status(ctx, outside); return err }, "outside the allowed roots"},
		{"purge another node's directory through a link", func() error { return c.Purge(ctx, filepath.Join(alias, "data"), 1) }, "not a link below the data root"},
	} {
		if err := tc.call(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}

	if _, err := os.Stat(other); err != nil {
		t.Fatalf("the directory behind the alias: %v", err)
	}

	// Inside the root, a planted pid file names a process that is not
	// this directory's postmaster: a kill signals nothing.
	planted := filepath.Join(root, "pg1", "data")
	if err := os.MkdirAll(planted, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(planted, "postmaster.pid"), pid, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Stop(ctx, planted, 1, "kill")
	_, _ = c.Stop(ctx, planted, 1, "immediate")
	select {
	case err := <-done:
		t.Fatalf("a process named by a planted postmaster.pid was killed: %v", err)
	default:
	}
	if _, err := os.Stat(filepath.Join(outside, "postmaster.pid")); err != nil {
		t.Fatalf("the file outside the root was touched: %v", err)
	}
}

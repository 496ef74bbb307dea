package agent_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/agent"
)

// TestAgent_TimelineHistory: the files land in pg_wal, owned like the rest
// of the data directory; an existing file is kept; bad names and contents
// are refused with 400 before anything is written.
func TestAgent_TimelineHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	e := pgtest.NewEnv(t)
	c := startAgent(t, e)
	ctx := context.Background()
	p := e.StartPrimary("pg1")
	wal := filepath.Join(p.DataDir, "pg_wal")
	good := "1\t0/5000028\tno recovery target specified\n"
	if err := c.InstallTimelineHistory(ctx, p.DataDir, 1, map[string]string{"00000002.history": good}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(wal, "00000002.history"))
	if err != nil || string(got) != good {
		t.Fatalf("00000002.history: %q %v", got, err)
	}
	var walSt, fileSt os.FileInfo
	if walSt, err = os.Stat(wal); err == nil {
		fileSt, err = os.Stat(filepath.Join(wal, "00000002.history"))
	}
	if err != nil || !sameOwner(walSt, fileSt) {
		t.Fatalf("the file is not owned like pg_wal (%v)", err)
	}
	// An existing file is not replaced.
	if err := c.InstallTimelineHistory(ctx, p.DataDir, 1, map[string]string{"00000002.history": "1\t0/6000000\tother\n"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(wal, "00000002.history")); string(got) != good {
		t.Fatalf("an existing history file was replaced: %q", got)
	}
	for _, tc := range []struct {
		files map[string]string
		want  string
	}{
		{map[string]string{"../../x.history": good}, "not a timeline history file"},
		{map[string]string{"00000003.history": "not a history"}, "00000003.history"},
		{map[string]string{"00000003.history": strings.Repeat("1\t0/1\tr\n", 10000)}, "over"},
		{map[string]string{}, "no file"},
	} {
		err := c.InstallTimelineHistory(ctx, p.DataDir, 1, tc.files)
		var ae *agent.Error
		if !asAgentError(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Detail, tc.want) {
			t.Errorf("%v: error %v, want 400 mentioning %q", tc.files, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(wal, "00000003.history")); !os.IsNotExist(err) {
		t.Fatalf("a refused file was written: %v", err)
	}
}

func sameOwner(a, b os.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Uid == sb.Uid && sa.Gid == sb.Gid
}

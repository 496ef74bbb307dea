package action

import (
	"context"
	"strings"
	"testing"

	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// TestExecOn_ErrorHidesPasswords: a failed statement is named in the
// error (it reaches operation steps and events), never with a password it
// carries, as primary_conninfo does.
func TestExecOn_ErrorHidesPasswords(t *testing.T) {
	e := pgtest.NewEnv(t)
	p := e.StartPrimary("pg1")
	n := meta.Node{Name: "pg1", Host: p.Host, Port: p.Port}
	err := execOn(context.Background(), meta.Cluster{Settings: meta.ClusterSettings{PGUser: "postgres"}}, n,
		"ALTER SYSTEM SET no_such_setting = 'host=h password=hunter22'")
	if err == nil || !strings.Contains(err.Error(), "no_such_setting") || strings.Contains(err.Error(), "hunter22") {
		t.Fatalf("error: %v", err)
	}
}

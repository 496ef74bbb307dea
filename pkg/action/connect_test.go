package action

import (
	"context"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/fleetsim"
	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// TestConnect_IgnoresLibpqEnvironment: a PGHOST in the manager's
// environment does not take the connection to a node that refuses TLS
// elsewhere.
func TestConnect_IgnoresLibpqEnvironment(t *testing.T) {
	reached := pgtest.DecoyEnvironment(t)
	node, srv, err := fleetsim.ListenPrimary("pg1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Connect(ctx, meta.Cluster{}, meta.Node{Name: "pg1", Host: node.Host, Port: node.Port})
	if err != nil || reached() != 0 {
		t.Fatalf("connect: %v; the host PGHOST names was reached %d times", err, reached())
	}
	_ = conn.Close(ctx)
}

package detector_test

import (
	"context"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/fleetsim"
	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/detector"
)

// TestDetector_IgnoresLibpqEnvironment: the manager's PG* environment
// (PGHOST, PGPORT, PGSSLMODE, ...) is for the operator's own psql, not for
// probes. A probe of a node that refuses TLS must reach that node, not the
// host PGHOST names.
func TestDetector_IgnoresLibpqEnvironment(t *testing.T) {
	reached := pgtest.DecoyEnvironment(t)
	node, srv, err := fleetsim.ListenPrimary("pg1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	d := detector.New(2*time.Second, time.Now, "")
	defer d.Close()
	r := d.Probe(context.Background(), detector.Target{Key: "c/s/pg1", Host: node.Host, Port: node.Port, User: "postgres"})
	if !r.OK || reached() != 0 {
		t.Fatalf("probe %+v; the host PGHOST names was reached %d times", r, reached())
	}
}

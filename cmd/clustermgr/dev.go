package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/clustermgr/clustermgr/pkg/auth"
	"github.com/clustermgr/clustermgr/pkg/config"
	"github.com/clustermgr/clustermgr/pkg/keyring"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/replica"
)

func newDevCmd() *cobra.Command {
	var (
		dataDir    string
		raftBase   int
		apiBase    int
		replicas   int
		logLevel   string
		agentPort  int
		healthPort int
		pgPort     int
		noShard    bool
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local manager group (3 replicas in one process) for trying clustermgr out",
		Long: `Run a complete manager group on loopback in one process: replicas m1..mN with
Raft on 127.0.0.1:<raft-port+i> and the REST API on 127.0.0.1:<api-port+i>,
a host agent on 127.0.0.1:<agent-port>, and (unless --no-shard) a real
PostgreSQL shard "demo/s1" provisioned through the API from the machine's
PostgreSQL binaries: a primary and two standbys on 127.0.0.1:<pg-port+i>.
Data goes to a temporary directory (removed on exit) unless --data-dir is
given (kept, so the group restarts with its state). Ctrl-C stops it all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if replicas < 1 || replicas > 7 {
				return fmt.Errorf("--replicas %d is out of range 1-7", replicas)
			}
			for _, p := range []struct {
				flag string
				v    int
			}{{"--raft-port", raftBase}, {"--api-port", apiBase}} {
				if p.v < 1 || p.v+replicas-1 > 65535 {
					return fmt.Errorf("%s %d is out of range 1-%d", p.flag, p.v, 65536-replicas)
				}
			}
			level := new(slog.LevelVar)
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q is not debug, info, warn or error", logLevel)
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))

			dir := dataDir
			if dir == "" {
				tmp, err := os.MkdirTemp("", "clustermgr-dev-")
				if err != nil {
					return fmt.Errorf("create temporary data dir: %w", err)
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("--data-dir: %w", err)
			}
			// PostgreSQL runs as its own OS user and must reach its
			// directories below this one.
			if err := os.Chmod(dir, 0o755); err != nil {
				return fmt.Errorf("--data-dir: %w", err)
			}
			agentToken, err := randomToken()
			if err != nil {
				return err
			}
			tokenFile := filepath.Join(dir, "admin.token")
			adminToken, err := devAdminToken(tokenFile)
			if err != nil {
				return err
			}
			// One key file for the three replicas, as a group on three
			// hosts would have one file copied to each.
			keyFile := filepath.Join(dir, "secret.key")
			keys, _, err := keyring.LoadOrCreate(keyFile)
			if err != nil {
				return fmt.Errorf("secret key file: %w", err)
			}
			var shard *devShard
			if !noShard {
				shard, err = startDevAgent(logger, filepath.Join(dir, "pg"), agentToken, agentPort, healthPort)
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "clustermgr dev: no PostgreSQL shard: %v\n", err)
				} else {
					defer shard.stop()
				}
			}
			peers := make([]meta.Peer, replicas)
			var peerList []string
			for i := range peers {
				peers[i] = meta.Peer{ID: fmt.Sprintf("m%d", i+1), RaftAddr: fmt.Sprintf("127.0.0.1:%d", raftBase+i)}
				peerList = append(peerList, peers[i].ID+"="+peers[i].RaftAddr)
			}
			var started []*replica.Replica
			defer func() {
				for i := len(started) - 1; i >= 0; i-- {
					_ = started[i].Stop()
				}
			}()
			for i, p := range peers {
				cfg := config.Defaults()
				cfg.Server.NodeID = p.ID
				cfg.Server.DataDir = filepath.Join(dir, p.ID)
				cfg.Server.RaftAddr = p.RaftAddr
				cfg.Server.APIAddr = fmt.Sprintf("127.0.0.1:%d", apiBase+i)
				cfg.Server.Peers = strings.Join(peerList, ",")
				cfg.Server.AgentToken = agentToken
				cfg.Server.AdminTokenFile = tokenFile
				cfg.Server.SecretKeyFile = keyFile
				if err := cfg.Validate(); err != nil {
					return err
				}
				rc, err := replicaConfig(cfg)
				if err != nil {
					return err
				}
				rc.Logger = logger
				rc.Keyring = keys
				r, err := replica.Start(rc)
				if err != nil {
					return fmt.Errorf("start replica %s: %w", p.ID, err)
				}
				started = append(started, r)
			}

			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			leader, err := started[0].Store.WaitForLeader(ctx)
			if err != nil {
				return err
			}
			if err := waitForTokens(ctx, started[0]); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "clustermgr dev: %d replicas, data in %s, leader %s\n", replicas, dir, leader)
			fmt.Fprintf(out, "  admin token (also in %s):\n  export CLUSTERMGR_TOKEN=%s\n", tokenFile, adminToken)
			for _, r := range started {
				fmt.Fprintf(out, "  %s  api %s  raft %s\n", r.Store.ID(), r.URL, r.Store.RaftAddr())
			}
			first := started[0].URL
			if shard != nil {
				fmt.Fprintf(out, "  agent %s\n", shard.url)
				passFile := filepath.Join(dir, "pgpass")
				password, err := devPassword(passFile)
				if err != nil {
					return err
				}
				if err := shard.provision(ctx, urls(started), adminToken, password, pgPort, out); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "clustermgr dev: provisioning the PostgreSQL shard failed: %v\n", err)
				} else {
					fmt.Fprintf(out, `
A PostgreSQL shard demo/s1 runs on 127.0.0.1:%[2]d-%[3]d; its servers take the cluster's password
(scram-sha-256), kept for psql in %[5]s:
  PGPASSFILE=%[5]s psql -h 127.0.0.1 -p %[2]d -U postgres
With CLUSTERMGR_TOKEN exported as above, try:
  curl -s -H "Authorization: Bearer $CLUSTERMGR_TOKEN" %[1]s/v1/clusters/demo/shards/s1    # health, LSNs, lag, last decision
  curl -s -H "Authorization: Bearer $CLUSTERMGR_TOKEN" %[1]s/v1/clusters/demo/shards/s1/primary
  curl -s -H "Authorization: Bearer $CLUSTERMGR_TOKEN" -H 'Content-Type: application/json' -XPOST %[1]s/v1/clusters/demo/shards/s1/switchover -d '{"to":"pg2"}'
  curl -s -H "Authorization: Bearer $CLUSTERMGR_TOKEN" %[1]s/v1/operations
  kill -9 $(head -1 %[4]s/pg2/data/postmaster.pid)          # crash the primary (pg2 since the switchover): a standby takes over
  curl -s -H "Authorization: Bearer $CLUSTERMGR_TOKEN" '%[1]s/v1/events?cluster=demo'
`, first, pgPort, pgPort+2, shard.root, passFile)
				}
			}
			fmt.Fprintf(out, `
Dashboard: %[1]s/ (or any replica's address; sign in with the token above)
More:
  curl -s -H "Authorization: Bearer $CLUSTERMGR_TOKEN" %[1]s/v1/manager
  CLUSTERMGR_SERVER=%[2]s clustermgr status
  CLUSTERMGR_SERVER=%[2]s clustermgr token create viewer --scope read
Ctrl-C stops everything.
`, first, strings.Join(urls(started), ","))
			<-ctx.Done()
			// The replicas going down one by one make the others log
			// failed heartbeats: nothing to report at a requested stop.
			level.Set(slog.LevelError + 4)
			for i := len(started) - 1; i >= 0; i-- {
				_ = started[i].Stop()
			}
			if shard != nil {
				shard.stop() // the deferred stop finds it stopped
			}
			where := "data removed"
			if dataDir != "" {
				where = "data kept in " + dataDir
			}
			fmt.Fprintf(out, "clustermgr dev: stopped (%s)\n", where)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "keep the replicas' data here (default: a temporary directory removed on exit)")
	f.IntVar(&raftBase, "raft-port", 7001, "Raft port of m1; m2 uses the next one, and so on")
	f.IntVar(&apiBase, "api-port", 8001, "API port of m1; m2 uses the next one, and so on")
	f.IntVar(&replicas, "replicas", 3, "number of replicas (1-7)")
	f.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	f.IntVar(&agentPort, "agent-port", 8100, "port of the host agent")
	f.IntVar(&healthPort, "health-port", 8008, "port of the agent's health checks (HAProxy polls them)")
	f.IntVar(&pgPort, "pg-port", 15432, "PostgreSQL port of pg1; pg2 and pg3 use the next ones")
	f.BoolVar(&noShard, "no-shard", false, "run the manager group only, without an agent and PostgreSQL")
	return cmd
}

// randomToken returns 32 random hex characters.
func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate a token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// devAdminToken reads the dev group's admin token from file, or makes one
// and writes it there (a kept --data-dir keeps its token).
func devAdminToken(file string) (string, error) {
	t, err := auth.ReadTokenFile(file)
	if errors.Is(err, auth.ErrNoTokenFile) {
		if t, err = auth.NewSecret(); err != nil {
			return "", err
		}
		err = auth.WriteTokenFile(file, t)
	}
	return t, err
}

// waitForTokens waits until r's state holds the group's first token.
func waitForTokens(ctx context.Context, r *replica.Replica) error {
	for {
		n := 0
		_ = r.Store.View(ctx, meta.Stale, func(st *meta.State) error {
			n = len(st.Tokens)
			return nil
		})
		if n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func urls(rs []*replica.Replica) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.URL
	}
	return out
}

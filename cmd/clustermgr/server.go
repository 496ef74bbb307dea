package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/clustermgr/clustermgr/pkg/auth"
	"github.com/clustermgr/clustermgr/pkg/config"
	"github.com/clustermgr/clustermgr/pkg/ha"
	"github.com/clustermgr/clustermgr/pkg/keyring"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/replica"
	"github.com/clustermgr/clustermgr/pkg/service"
	"github.com/clustermgr/clustermgr/pkg/tlsconf"
)

// addServerCommands adds server and dev.
func addServerCommands(root *cobra.Command) {
	root.AddCommand(newServerCmd(), newDevCmd(), newAgentCmd(), newKeygenCmd())
}

// newKeygenCmd prints a fresh secret key, a line for secret_key_file.
func newKeygenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Print a new secret key (a line of secret_key_file; the first line seals, every line opens)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			line, err := keyring.NewKey()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), line)
			return err
		},
	}
}

func newServerCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a manager replica",
		Long: `Run one replica of the manager group. Settings come from the config file
(--config), overridden by CLUSTERMGR_<SECTION>_<KEY> environment variables,
overridden by flags. SIGTERM or SIGINT shut the replica down cleanly, handing
leadership to another replica first when this one leads.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath, os.Environ(), cmd.Flags())
			if err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return runServer(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "path of cluster_mgr.cnf (TOML)")
	f.String("node-id", "", "this replica's id (server.node_id)")
	f.String("data-dir", "", "directory of the Raft log and snapshots (server.data_dir)")
	f.String("raft-addr", "", "host:port of the Raft transport (server.raft_addr)")
	f.String("api-addr", "", "host:port the REST API listens on (server.api_addr)")
	f.String("peers", "", "bootstrap peers id=host:port,... as Raft addresses (server.peers)")
	f.String("agent-token", "", "bearer token of the host agents (server.agent_token)")
	f.String("peer-token", "", "token followers present to the leader (server.peer_token)")
	f.String("secret-key-file", "", "file of the keys that seal the secrets kept in Raft, mode 0600, the same on every replica; made when missing (server.secret_key_file, default <data_dir>/secret.key)")
	f.String("admin-token-file", "", "file of the group's first admin token, mode 0600; made by the first leader when missing (server.admin_token_file, default <data_dir>/admin.token)")
	return cmd
}

// replicaConfig turns the validated file configuration into a replica's.
func replicaConfig(cfg config.Config) (replica.Config, error) {
	peers, err := meta.ParsePeers(cfg.Server.Peers)
	if err != nil {
		return replica.Config{}, fmt.Errorf("server.peers: %w", err)
	}
	return replica.Config{
		NodeID:       cfg.Server.NodeID,
		DataDir:      cfg.Server.DataDir,
		RaftAddr:     cfg.Server.RaftAddr,
		APIListen:    cfg.Server.APIAddr,
		AdvertiseAPI: cfg.Server.AdvertiseAPI,
		Peers:        peers,
		Timing: meta.Timing{
			HeartbeatTimeout:   cfg.Raft.HeartbeatTimeout,
			ElectionTimeout:    cfg.Raft.ElectionTimeout,
			LeaderLeaseTimeout: cfg.Raft.LeaderLeaseTimeout,
			CommitTimeout:      cfg.Raft.CommitTimeout,
			SnapshotInterval:   cfg.Raft.SnapshotInterval,
			SnapshotThreshold:  cfg.Raft.SnapshotThreshold,
			TrailingLogs:       cfg.Raft.TrailingLogs,
			MaxAppendEntries:   cfg.Raft.MaxAppendEntries,
		},
		ApplyTimeout:    cfg.Raft.ApplyTimeout,
		AdminTokenFile:  cfg.AdminTokenPath(),
		API:             service.Options{MaxBodyBytes: cfg.API.MaxBodyBytes, ForwardTimeout: cfg.API.ForwardTimeout, BackupMinInterval: cfg.Backup.MinInterval},
		ReadTimeout:     cfg.API.ReadTimeout,
		WriteTimeout:    cfg.API.WriteTimeout,
		ShutdownTimeout: cfg.API.ShutdownTimeout,
		HA: &ha.Config{
			ProbeInterval: cfg.HA.ProbeInterval, ProbeTimeout: cfg.HA.ProbeTimeout, FailureThreshold: cfg.HA.FailureThreshold,
			RejoinBackoff: cfg.HA.RejoinBackoff, LeaseTTL: cfg.HA.LeaseTTL, NoRebuild: !cfg.HA.RebuildOnRewindFailure, AgentToken: cfg.Server.AgentToken, PeerToken: cfg.Server.PeerToken,
		},
		Logger: cfg.NewLogger(os.Stderr),
	}, nil
}

// runServer runs one replica until ctx is cancelled.
func runServer(ctx context.Context, cfg config.Config) error {
	// Everything a replica writes (raft.db, snapshots, the admin token)
	// is for its own user alone: files 0600, directories 0700.
	syscall.Umask(0o077)
	rc, err := replicaConfig(cfg)
	if err != nil {
		return err
	}
	if cfg.TLS.CertFile != "" {
		b, err := tlsconf.Load(cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.CAFile)
		if err != nil {
			return fmt.Errorf("[tls]: %w", err)
		}
		rc.TLS = b
	}
	// A token file that exists must be usable now, not when this replica
	// first leads.
	if _, err := auth.ReadTokenFile(rc.AdminTokenFile); err != nil && !errors.Is(err, auth.ErrNoTokenFile) {
		return fmt.Errorf("server.admin_token_file: %w", err)
	}
	if rc.Keyring, err = loadKeyring(cfg.SecretKeyPath(), rc.Logger); err != nil {
		return fmt.Errorf("server.secret_key_file: %w", err)
	}
	r, err := replica.Start(rc)
	if err != nil {
		return err
	}
	<-ctx.Done()
	rc.Logger.Info("shutting down")
	return r.Stop()
}

// loadKeyring reads the secret key file, or makes it (with its directory,
// 0700) when it does not exist.
func loadKeyring(path string, log *slog.Logger) (*keyring.Keyring, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	k, created, err := keyring.LoadOrCreate(path)
	if err != nil {
		return nil, err
	}
	if created {
		log.Warn("wrote a new secret key file: every replica of the group needs the same one (copy it to the others before their first start, or make one with clustermgr keygen)", "file", path, "key", k.Current())
	} else {
		log.Info("secret keys loaded", "file", path, "keys", k.IDs())
	}
	return k, nil
}

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/pgctl"
	"github.com/clustermgr/clustermgr/pkg/tlsconf"
)

func newAgentCmd() *cobra.Command {
	var apiAddr, healthAddr, token, tokenFile, pgBin, osUser, logLevel string
	var certFile, keyFile, caFile string
	var roots []string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the host agent beside PostgreSQL",
		Long: `Run the host agent: an authenticated HTTP API, used by the manager leader,
that starts, stops, fences, promotes, rewinds and reconfigures the PostgreSQL
servers of this host. PostgreSQL programs run as --os-user when the agent runs
as root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tokenFile != "" {
				if token != "" {
					return errors.New("--token and --token-file exclude each other")
				}
				t, err := readSecret("--token-file", tokenFile)
				if err != nil {
					return err
				}
				token = t
			}
			if token == "" {
				if env, ok := os.LookupEnv("CLUSTERMGR_AGENT_TOKEN"); ok {
					token = env
				}
			}
			if len(token) < 16 {
				return errors.New("--token (or --token-file, or CLUSTERMGR_AGENT_TOKEN) of at least 16 characters is required")
			}
			level := new(slog.LevelVar)
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q is not debug, info, warn or error", logLevel)
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			if pgBin == "" {
				b, err := pgctl.FindBinDir(os.LookupEnv)
				if err != nil {
					return fmt.Errorf("--pg-bin: %w", err)
				}
				pgBin = b
			}
			runner, err := pgctl.NewRunner(pgBin, osUser)
			if err != nil {
				return err
			}
			srv, err := agent.NewServer(token, runner, logger, roots...)
			if err != nil {
				return err
			}
			var tlsCfg *tls.Config
			if certFile != "" || keyFile != "" || caFile != "" {
				b, err := tlsconf.Load(certFile, keyFile, caFile)
				if err != nil {
					return fmt.Errorf("--tls-cert-file, --tls-key-file, --tls-ca-file: %w", err)
				}
				tlsCfg = b.Peer() // only managers with a certificate from the CA
			}
			ln, err := net.Listen("tcp", apiAddr)
			if err != nil {
				return fmt.Errorf("--api-addr: %w", err)
			}
			if tlsCfg != nil {
				ln = tls.NewListener(ln, tlsCfg)
			}
			var hln net.Listener
			if healthAddr != "" {
				if hln, err = net.Listen("tcp", healthAddr); err != nil {
					ln.Close()
					return fmt.Errorf("--health-addr: %w", err)
				}
			}
			hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			errc := make(chan error, 2)
			go func() { errc <- hs.Serve(ln) }()
			// The health checks load balancers poll: plain HTTP, no
			// token (they tell a node's role and lag, nothing else).
			var hsh *http.Server
			if hln != nil {
				hsh = &http.Server{Handler: srv.HealthHandler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
				go func() { errc <- hsh.Serve(hln) }()
				logger.Info("agent health checks listening", "addr", hln.Addr().String())
			}
			leaseCtx, stopLeases := context.WithCancel(context.Background())
			leasesDone := make(chan struct{})
			go func() {
				defer close(leasesDone)
				srv.RunLeases(leaseCtx)
			}()
			defer func() {
				stopLeases()
				<-leasesDone
			}()
			logger.Info("agent listening", "addr", ln.Addr().String(), "pg_bin", pgBin, "os_user", osUser)
			running := 1
			if hsh != nil {
				running++
			}
			var serveErr error
			select {
			case serveErr = <-errc:
				running--
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = errors.Join(serveErr, hs.Shutdown(sctx))
			if hsh != nil {
				err = errors.Join(err, hsh.Shutdown(sctx))
			}
			for ; running > 0; running-- {
				if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
					err = errors.Join(err, e)
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&apiAddr, "api-addr", "127.0.0.1:9001", "host:port the agent listens on")
	f.StringVar(&healthAddr, "health-addr", "127.0.0.1:8008", "host:port of the health checks load balancers poll (plain HTTP, no token: /primary, /replica, /read-only, /sync, /async, /health); \"\" serves none")
	f.StringVar(&token, "token", "", "bearer token the manager must present (at least 16 characters)")
	f.StringVar(&tokenFile, "token-file", "", "file whose first line is the token")
	f.StringVar(&pgBin, "pg-bin", "", "directory of PostgreSQL's programs (default $PG_BIN or pg_config --bindir)")
	f.StringVar(&osUser, "os-user", "postgres", "OS user PostgreSQL runs as when the agent runs as root")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&certFile, "tls-cert-file", "", "this agent's certificate (PEM); with --tls-key-file and --tls-ca-file the agent serves mutual TLS and accepts only managers whose certificate chains to the CA")
	f.StringVar(&keyFile, "tls-key-file", "", "key of --tls-cert-file (PEM)")
	f.StringVar(&caFile, "tls-ca-file", "", "the manager group's CA (PEM)")
	f.StringArrayVar(&roots, "data-root", []string{"/var/lib/postgresql"}, "directory under which the agent may create and delete data directories (repeatable)")
	return cmd
}

package replica

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/clustermgr/clustermgr/pkg/ha"
	"github.com/clustermgr/clustermgr/pkg/keyring"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/metrics"
	"github.com/clustermgr/clustermgr/pkg/service"
	"github.com/clustermgr/clustermgr/pkg/tlsconf"
	"github.com/clustermgr/clustermgr/pkg/webhook"
)

// Config configures one replica.
type Config struct {
	NodeID   string
	DataDir  string
	RaftAddr string
	// APIListen is the host:port the API listens on ("127.0.0.1:0" picks a
	// free port).
	APIListen string
	// AdvertiseAPI is the URL other replicas use to reach this API; default
	// http://<the address actually listened on>.
	AdvertiseAPI string
	Peers        []meta.Peer

	Timing       meta.Timing
	ApplyTimeout time.Duration
	API          service.Options

	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	ShutdownTimeout time.Duration
	// RegisterInterval is how often a follower checks its member record.
	RegisterInterval time.Duration

	// AdminTokenFile holds the group's first admin token; when it does
	// not exist, the first leader makes one and writes it there (see
	// service.Bootstrap). "" makes none.
	AdminTokenFile string

	// Keyring seals and opens the secrets the group keeps in Raft; every
	// replica of a group needs the same keys. nil: a key of this process
	// alone (tests of one replica).
	Keyring *keyring.Keyring

	// WrapAPI, when set, wraps the API's handler (tests hold every
	// exchange to the API document with it).
	WrapAPI func(http.Handler) http.Handler

	// TLS, when set, serves the API over HTTPS and runs Raft, forwarded
	// requests, followers' views and member records over mutual TLS.
	TLS *tlsconf.Bundle

	// HA runs the HA pipeline when set.
	HA *ha.Config

	// Transport and InMemory are passed to the store (tests).
	Transport raft.Transport
	InMemory  bool

	Logger *slog.Logger
}

// Replica is a running manager replica.
type Replica struct {
	Store   *meta.Store
	Service *service.Service
	// HA is the replica's pipeline, nil when not configured.
	HA *ha.Manager
	// URL is this replica's advertised API address.
	URL string

	cfg      Config
	log      *slog.Logger
	ln       net.Listener
	srv      *http.Server
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
	// apiConns counts the connections the API server accepted.
	apiConns atomic.Uint64
}

// APIConnections is how many connections this replica's API accepted
// since it started.
func (r *Replica) APIConnections() uint64 { return r.apiConns.Load() }

// peerTransport carries what a replica sends the other replicas
// (forwarded requests, views, the leader's asks) and the agents. It keeps
// an idle connection for each request in flight to a replica, up to 64
// (the default keeps 2, so a follower forwarding hundreds of requests a
// second opened a connection for most of them), and one to each agent
// however large the fleet (the default keeps 100 in all, so renewing
// the leases of more primaries than that opened a connection each time).
func peerTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0
	t.MaxIdleConnsPerHost = 64
	return t
}

// Start opens the store and serves the API.
func Start(cfg Config) (*Replica, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.RegisterInterval <= 0 {
		cfg.RegisterInterval = time.Second
	}
	if cfg.Keyring == nil {
		cfg.Keyring = keyring.Ephemeral()
	}
	ln, err := net.Listen("tcp", cfg.APIListen)
	if err != nil {
		return nil, fmt.Errorf("listen on api address %s: %w", cfg.APIListen, err)
	}
	url := cfg.AdvertiseAPI
	scheme := "http://"
	var peerTLS *tls.Config
	transport := peerTransport()
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS.API())
		scheme, peerTLS = "https://", cfg.TLS.Peer()
		transport.TLSClientConfig = cfg.TLS.Client()
	}
	if url == "" {
		url = scheme + ln.Addr().String()
	}
	log := cfg.Logger.With("node_id", cfg.NodeID)
	// The metrics read the service's picture at each scrape; the service
	// exists before the first scrape can come.
	var svc *service.Service
	met := metrics.New(func() metrics.Snapshot { return svc.MetricsSnapshot() })
	// The pipeline needs the store and the store needs the pipeline's
	// leader task: the task waits until the pipeline exists.
	var mgr *ha.Manager
	haReady := make(chan struct{})
	var boot *service.Bootstrap
	var sealer *service.Sealer
	bootReady := make(chan struct{})
	// Webhooks go to the operators' receivers, outside the group: the
	// system's roots, not the group's CA.
	hooks := &webhook.Dispatcher{Open: func(purpose, sealed string) (string, error) { return cfg.Keyring.Open(purpose, sealed) },
		Client: &http.Client{Timeout: 10 * time.Second}, Log: log.With("component", "webhook")}
	tasks := []meta.LeaderTask{func(context.Context) { met.LeadershipGained() }, func(ctx context.Context) {
		select {
		case <-bootReady:
			boot.Run(ctx)
		case <-ctx.Done():
		}
	}, func(ctx context.Context) {
		select {
		case <-bootReady:
			sealer.Run(ctx)
		case <-ctx.Done():
		}
	}, func(ctx context.Context) {
		select {
		case <-bootReady:
			hooks.Run(ctx)
		case <-ctx.Done():
		}
	}}
	if cfg.HA != nil {
		tasks = append(tasks, func(ctx context.Context) {
			select {
			case <-haReady:
				mgr.LeaderTask(ctx)
			case <-ctx.Done():
			}
		})
	}
	store, err := meta.Open(meta.Config{
		NodeID: cfg.NodeID, DataDir: cfg.DataDir, RaftAddr: cfg.RaftAddr, APIAddr: url, Peers: cfg.Peers,
		Timing: cfg.Timing, ApplyTimeout: cfg.ApplyTimeout, Transport: cfg.Transport, InMemory: cfg.InMemory,
		Logger: cfg.Logger, LeaderTasks: tasks, TLS: peerTLS, OnApply: met.ObserveApply,
	})
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	boot = &service.Bootstrap{Store: store, AdminTokenFile: cfg.AdminTokenFile, Keyring: cfg.Keyring, Logger: log}
	apiOpts := cfg.API
	apiOpts.Keyring = cfg.Keyring
	apiOpts.Metrics = met
	apiOpts.Webhooks = hooks
	hooks.Store = store
	if apiOpts.Transport == nil {
		apiOpts.Transport = transport
	}
	if apiOpts.Logger == nil {
		apiOpts.Logger = log
	}
	if cfg.HA != nil {
		hc := *cfg.HA
		if hc.HTTPTransport == nil {
			hc.HTTPTransport = transport
		}
		if hc.AgentTransport == nil {
			hc.AgentTransport = transport
		}
		if hc.Logger == nil {
			hc.Logger = log
		}
		hc.Keyring = cfg.Keyring
		hc.ObserveProbe = met.ObserveProbe
		hc.ObserveSkipped = met.ProbesSkipped
		hc.OperationEnded = func(op meta.Operation) {
			steps := map[string]time.Time{}
			for _, st := range op.Steps {
				if st.State == meta.StepDone {
					steps[st.Name] = st.At
				}
			}
			met.OperationEnded(metrics.OperationDone{Kind: op.Kind, State: op.State, Created: op.CreatedAt, Steps: steps})
		}
		mgr = ha.New(store, hc)
		apiOpts.HA = mgr
		close(haReady)
	}
	sealer = &service.Sealer{Store: store, Keyring: cfg.Keyring, Logger: log}
	if mgr != nil {
		sealer.HA = mgr
	}
	close(bootReady)
	svc = service.New(store, apiOpts)
	var handler http.Handler = svc
	if cfg.WrapAPI != nil {
		handler = cfg.WrapAPI(svc)
	}
	r := &Replica{
		Store: store, Service: svc, HA: mgr, URL: url, cfg: cfg, log: log, ln: ln,
		srv: &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn), ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout},
	}
	r.srv.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			r.apiConns.Add(1)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if mgr != nil {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			mgr.RunDetector(ctx)
		}()
	}
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("api server stopped", "err", err)
		}
	}()
	go func() {
		defer r.wg.Done()
		reg := &service.Registrar{Store: store, Client: &http.Client{Timeout: 5 * time.Second, Transport: transport}, Interval: cfg.RegisterInterval, Logger: log, Credential: svc.PeerCredential}
		reg.Run(ctx)
	}()
	log.Info("replica started", "raft_addr", store.RaftAddr(), "api", url)
	return r, nil
}

// Stop hands leadership to another replica when this one leads, stops the
// API server and closes the store. It is safe to call more than once.
func (r *Replica) Stop() error {
	r.stopOnce.Do(func() { r.stopErr = r.stop(true) })
	return r.stopErr
}

// Kill stops the replica without handing leadership away, as a crash would
// look to the others (tests).
func (r *Replica) Kill() error {
	r.stopOnce.Do(func() { r.stopErr = r.stop(false) })
	return r.stopErr
}

func (r *Replica) stop(transfer bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.ShutdownTimeout)
	defer cancel()
	if transfer && r.Store.IsLeader() {
		if err := r.Store.TransferLeadership(ctx, ""); err != nil {
			r.log.Warn("leadership transfer before shutdown failed", "err", err)
		} else {
			r.log.Info("leadership transferred before shutdown")
		}
	}
	r.cancel()
	var first error
	if transfer {
		if err := r.srv.Shutdown(ctx); err != nil {
			first = fmt.Errorf("shut down api server: %w", err)
		}
	} else {
		_ = r.srv.Close()
	}
	r.wg.Wait()
	if err := r.Store.Close(); err != nil && first == nil {
		first = err
	}
	r.log.Info("replica stopped")
	return first
}

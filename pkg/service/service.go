package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// Store is what the API needs of the replicated store.
type Store interface {
	ID() string
	RaftAddr() string
	APIAddr() string
	IsLeader() bool
	Leader() (id, apiAddr string)
	Apply(ctx context.Context, cmd meta.Command) error
	View(ctx context.Context, c meta.Consistency, fn func(*meta.State) error) error
	Info() (meta.ManagerInfo, error)
	Join(ctx context.Context, id, raftAddr, apiAddr string) error
	Remove(ctx context.Context, id string) error
	TransferLeadership(ctx context.Context, to string) error
}

// Options tunes the API.
type Options struct {
	MaxBodyBytes   int64         // default 1 MiB
	ForwardTimeout time.Duration // default 10 s
	// Transport carries forwarded requests; default http.DefaultTransport.
	Transport http.RoundTripper
	Logger    *slog.Logger
	// HA is the replica's HA pipeline; nil serves topology only.
	HA HA
}

// Service is the REST API of one replica.
type Service struct {
	store  Store
	opts   Options
	log    *slog.Logger
	router chi.Router
	proxy  *httputil.ReverseProxy
}

// New returns the API of one replica over store.
func New(store Store, opts Options) *Service {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.ForwardTimeout <= 0 {
		opts.ForwardTimeout = 10 * time.Second
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Service{store: store, opts: opts, log: opts.Logger}
	s.proxy = &httputil.ReverseProxy{
		Rewrite:      s.rewriteToLeader,
		Transport:    opts.Transport,
		ErrorHandler: s.forwardFailed,
	}
	s.router = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.router.ServeHTTP(w, r)
}

func (s *Service) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(s.recoverer, s.limitBody)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, api.Problem{Status: http.StatusNotFound, Detail: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, api.Problem{Status: http.StatusMethodNotAllowed, Detail: r.Method + " is not allowed on " + r.URL.Path})
	})

	// Served by every replica from its own view.
	r.Get("/v1/health", s.health)
	r.Get("/v1/manager", s.manager)
	r.Post("/v1/internal/views", s.observePeer)

	// Served by the leader; followers forward (reads with ?stale=true are
	// served locally).
	r.Group(func(r chi.Router) {
		r.Use(s.leaderOnly)
		r.Post("/v1/manager/members", s.joinMember)
		r.Delete("/v1/manager/members/{id}", s.removeMember)
		r.Post("/v1/manager/transfer-leadership", s.transferLeadership)

		r.Get("/v1/clusters", s.listClusters)
		r.Post("/v1/clusters", s.createCluster)
		r.Get("/v1/clusters/{cluster}", s.getCluster)
		r.Patch("/v1/clusters/{cluster}", s.patchCluster)
		r.Delete("/v1/clusters/{cluster}", s.deleteCluster)
		r.Get("/v1/clusters/{cluster}/shards", s.listShards)
		r.Post("/v1/clusters/{cluster}/shards", s.createShard)
		r.Get("/v1/clusters/{cluster}/shards/{shard}", s.getShard)
		r.Patch("/v1/clusters/{cluster}/shards/{shard}", s.patchShard)
		r.Delete("/v1/clusters/{cluster}/shards/{shard}", s.deleteShard)
		r.Get("/v1/clusters/{cluster}/shards/{shard}/primary", s.primary)
		r.Post("/v1/clusters/{cluster}/shards/{shard}/switchover", s.switchover)
		r.Post("/v1/clusters/{cluster}/shards/{shard}/failover", s.failover)
		r.Post("/v1/clusters/{cluster}/shards/{shard}/nodes/{node}/rejoin", s.rejoin)
		r.Post("/v1/clusters/{cluster}/shards/{shard}/nodes/{node}/reinit", s.reinit)
		r.Get("/v1/clusters/{cluster}/shards/{shard}/backups", s.listBackups)
		r.Post("/v1/clusters/{cluster}/shards/{shard}/backups", s.takeBackup)
		r.Post("/v1/clusters/{cluster}/shards/{shard}/restore", s.restore)
		r.Post("/v1/clusters/{cluster}/shards/{shard}/nodes", s.addNode)
		r.Delete("/v1/clusters/{cluster}/shards/{shard}/nodes/{node}", s.removeNode)

		r.Get("/v1/events", s.listEvents)
		r.Get("/v1/operations", s.listOperations)
		r.Get("/v1/operations/{id}", s.getOperation)
		r.Delete("/v1/operations/{id}", s.cancelOperation)
	})
	return r
}

func (s *Service) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeProblem(w, r, api.Problem{Status: http.StatusInternalServerError, Detail: fmt.Sprint("internal error: ", v)})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Service) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.opts.MaxBodyBytes {
			writeProblem(w, r, api.Problem{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, s.opts.MaxBodyBytes)})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// isStaleRead reports whether r asks to be served from this replica's own
// state.
func isStaleRead(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	q := r.URL.Query()
	return q.Get("stale") == "true" || q.Get("consistency") == "stale"
}

// leaderOnly serves the request here when this replica leads (or the read
// may be stale), forwards it to the leader otherwise, and answers 503 when
// no leader is known or the request was already forwarded once.
func (s *Service) leaderOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.store.IsLeader() || isStaleRead(r) {
			next.ServeHTTP(w, r)
			return
		}
		id, apiAddr := s.store.Leader()
		if by := r.Header.Get(api.ForwardedHeader); by != "" {
			writeProblem(w, r, api.Problem{Status: http.StatusServiceUnavailable, LeaderID: id,
				Detail: fmt.Sprintf("request forwarded by %s reached %s, which is not the leader; retry shortly", by, s.store.ID())})
			return
		}
		if id == "" || apiAddr == "" {
			writeProblem(w, r, api.Problem{Status: http.StatusServiceUnavailable, LeaderID: id, Detail: "no leader is known; retry shortly"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.ForwardTimeout)
		defer cancel()
		s.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, leaderAddrKey{}, apiAddr)))
	})
}

type leaderAddrKey struct{}

func (s *Service) rewriteToLeader(pr *httputil.ProxyRequest) {
	addr, _ := pr.In.Context().Value(leaderAddrKey{}).(string)
	target, err := url.Parse(addr)
	if err != nil || target.Host == "" {
		target = &url.URL{Scheme: "http", Host: addr}
	}
	pr.SetURL(target)
	pr.SetXForwarded()
	pr.Out.Header.Set(api.ForwardedHeader, s.store.ID())
}

func (s *Service) forwardFailed(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, r, err)
		return
	}
	id, apiAddr := s.store.Leader()
	s.log.Warn("forwarding to leader failed", "leader", id, "leader_api", apiAddr, "path", r.URL.Path, "err", err)
	writeProblem(w, r, api.Problem{Status: http.StatusServiceUnavailable, LeaderID: id,
		Detail: fmt.Sprintf("the leader %s at %s could not be reached: %v; retry shortly", id, apiAddr, err)})
}

// consistency returns the read level a request asks for.
func consistency(r *http.Request) (meta.Consistency, error) {
	if isStaleRead(r) {
		return meta.Stale, nil
	}
	return meta.ParseConsistency(r.URL.Query().Get("consistency"))
}

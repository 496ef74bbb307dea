package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/auth"
	"github.com/clustermgr/clustermgr/pkg/keyring"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/metrics"
	"github.com/clustermgr/clustermgr/pkg/openapi"
	"github.com/clustermgr/clustermgr/pkg/web"
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
	MaxBodyBytes int64 // default 1 MiB
	// BackupMinInterval is the shortest time a backup schedule may leave
	// between two backups; default 1 h.
	BackupMinInterval time.Duration
	ForwardTimeout    time.Duration // default 10 s
	// Transport carries forwarded requests; default http.DefaultTransport.
	Transport http.RoundTripper
	Logger    *slog.Logger
	// HA is the replica's HA pipeline; nil serves topology only.
	HA HA
	// Keyring seals the secrets the API writes to the state and opens the
	// peer secret; nil: a key made for this process alone (tests of one
	// replica).
	Keyring *keyring.Keyring
	// Metrics, when set, is the replica's metrics, fed by the store and
	// the pipeline too; nil: the service makes its own.
	Metrics *metrics.Metrics
	// Webhooks reports the deliveries of the replica's webhook
	// dispatcher (the leader's); nil: none.
	Webhooks Deliveries
}

// Deliveries are a webhook dispatcher's recent attempts.
type Deliveries interface {
	Deliveries(name string) []api.Delivery
}

// Service is the REST API of one replica.
type Service struct {
	store   Store
	opts    Options
	log     *slog.Logger
	router  chi.Router
	proxy   *httputil.ReverseProxy
	metrics *metrics.Metrics
	auth    authState
	// endpoints are the routes registered, with their scope.
	endpoints []Endpoint
	// profiling is held while a CPU profile or an execution trace is
	// taken (one at a time).
	profiling sync.Mutex
}

// New returns the API of one replica over store.
func New(store Store, opts Options) *Service {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.BackupMinInterval <= 0 {
		opts.BackupMinInterval = time.Hour
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
	if opts.Keyring == nil {
		opts.Keyring = keyring.Ephemeral()
	}
	s := &Service{store: store, opts: opts, log: opts.Logger, metrics: opts.Metrics}
	if s.metrics == nil {
		s.metrics = metrics.New(s.MetricsSnapshot)
	}
	s.proxy = &httputil.ReverseProxy{
		Rewrite:      s.rewriteToLeader,
		Transport:    opts.Transport,
		ErrorHandler: s.forwardFailed,
	}
	s.router = s.routes()
	return s
}

// Routes returns the API's routes, for what walks them (tests, the API's
// description).
func (s *Service) Routes() chi.Routes { return s.router }

// ServeHTTP implements http.Handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.router.ServeHTTP(w, r)
}

func (s *Service) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(s.instrument, s.recoverer, s.limitBody)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, api.Problem{Status: http.StatusNotFound, Detail: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, api.Problem{Status: http.StatusMethodNotAllowed, Detail: r.Method + " is not allowed on " + r.URL.Path})
	})

	// The dashboard, served by every replica; it reads the API with the
	// token the user signs in with.
	s.handle(r, http.MethodGet, "/", auth.Open, func(w http.ResponseWriter, r *http.Request) { s.page(w, r, "index.html") })
	s.handle(r, http.MethodGet, "/ui/{file}", auth.Open, func(w http.ResponseWriter, r *http.Request) { s.page(w, r, chi.URLParam(r, "file")) })

	// Served by every replica from its own view.
	s.handle(r, http.MethodGet, "/v1/health", auth.Open, s.health)
	s.handle(r, http.MethodGet, "/v1/openapi.json", auth.Open, serveOpenAPI)
	s.handle(r, http.MethodGet, "/v1/manager", auth.Read, s.manager)
	s.handle(r, http.MethodGet, "/v1/whoami", auth.Read, whoami)
	s.handle(r, http.MethodGet, "/v1/manager/pprof/{profile}", auth.Admin, s.profile)
	// Prometheus metrics of this replica's view (a read token: they name
	// the fleet's clusters and nodes).
	s.handle(r, http.MethodGet, "/metrics", auth.Read, s.serveMetrics)
	// Followers' views carry the peer credential (checked by the handler).
	r.With(requireJSON).Post("/v1/internal/views", s.observePeer)
	s.endpoints = append(s.endpoints, Endpoint{Method: http.MethodPost, Pattern: "/v1/internal/views", Scope: "peer"})
	// And so does the leader's ask to probe nodes.
	r.With(requireJSON).Post("/v1/internal/watch", s.peerWatch)
	s.endpoints = append(s.endpoints, Endpoint{Method: http.MethodPost, Pattern: "/v1/internal/watch", Scope: "peer"})

	// Served by the leader; followers forward (reads with ?stale=true are
	// served locally). The replica that serves a request checks its token.
	r.Group(func(r chi.Router) {
		r.Use(s.leaderOnly)
		r.With(s.authorize(auth.Admin, true), requireJSON, s.audited).Post("/v1/manager/members", s.joinMember)
		s.endpoints = append(s.endpoints, Endpoint{Method: http.MethodPost, Pattern: "/v1/manager/members", Scope: auth.Admin.String(), PeerOK: true, Leader: true})
		s.handleLed(r, http.MethodDelete, "/v1/manager/members/{id}", auth.Admin, s.removeMember)
		s.handleLed(r, http.MethodPost, "/v1/manager/transfer-leadership", auth.Operate, s.transferLeadership)

		s.handleLed(r, http.MethodGet, "/v1/agents", auth.Read, s.listAgents)
		s.handleLed(r, http.MethodPost, "/v1/agents", auth.Admin, s.putAgent)
		s.handleLed(r, http.MethodDelete, "/v1/agents/{name}", auth.Admin, s.deleteAgent)
		s.handleLed(r, http.MethodGet, "/v1/tokens", auth.Admin, s.listTokens)
		s.handleLed(r, http.MethodPost, "/v1/tokens", auth.Admin, s.createToken)
		s.handleLed(r, http.MethodDelete, "/v1/tokens/{name}", auth.Admin, s.revokeToken)
		s.handleLed(r, http.MethodGet, "/v1/audit", auth.Admin, s.listAudit)

		s.handleLed(r, http.MethodGet, "/v1/clusters", auth.Read, s.listClusters)
		s.handleLed(r, http.MethodPost, "/v1/clusters", auth.Admin, s.createCluster)
		s.handleLed(r, http.MethodGet, "/v1/clusters/{cluster}", auth.Read, s.getCluster)
		// Pausing and resuming need operate; the handler asks admin for
		// any other change.
		s.handleLed(r, http.MethodPatch, "/v1/clusters/{cluster}", auth.Operate, s.patchCluster)
		s.handleLed(r, http.MethodDelete, "/v1/clusters/{cluster}", auth.Admin, s.deleteCluster)
		s.handleLed(r, http.MethodGet, "/v1/clusters/{cluster}/shards", auth.Read, s.listShards)
		s.handleLed(r, http.MethodPost, "/v1/clusters/{cluster}/shards", auth.Admin, s.createShard)
		s.handleLed(r, http.MethodGet, "/v1/clusters/{cluster}/shards/{shard}", auth.Read, s.getShard)
		s.handleLed(r, http.MethodPatch, "/v1/clusters/{cluster}/shards/{shard}", auth.Admin, s.patchShard)
		s.handleLed(r, http.MethodDelete, "/v1/clusters/{cluster}/shards/{shard}", auth.Admin, s.deleteShard)
		s.handleLed(r, http.MethodGet, "/v1/clusters/{cluster}/shards/{shard}/primary", auth.Read, s.primary)
		s.handleLed(r, http.MethodGet, "/v1/clusters/{cluster}/shards/{shard}/connection", auth.Read, s.connection)
		s.handleLed(r, http.MethodPost, "/v1/clusters/{cluster}/shards/{shard}/switchover", auth.Operate, s.switchover)
		s.handleLed(r, http.MethodPost, "/v1/clusters/{cluster}/shards/{shard}/failover", auth.Operate, s.failover)
		s.handleLed(r, http.MethodPost, "/v1/clusters/{cluster}/shards/{shard}/restart", auth.Operate, s.restart)
		s.handleLed(r, http.MethodPost, "/v1/clusters/{cluster}/shards/{shard}/nodes/{node}/rejoin", auth.Operate, s.rejoin)
		s.handleLed(r, http.MethodPost, "/v1/clusters/{cluster}/shards/{shard}/nodes/{node}/maintenance", auth.Operate, s.maintenance(true))
		s.handleLed(r, http.MethodDelete, "/v1/clusters/{cluster}/shards/{shard}/nodes/{node}/maintenance", auth.Operate, s.maintenance(false))
		s.handleLed(r, http.MethodPost, "/v1/clusters/{cluster}/shards/{shard}/nodes/{node}/reinit", auth.Operate, s.reinit)
		s.handleLed(r, http.MethodGet, "/v1/clusters/{cluster}/shards/{shard}/backups", auth.Read, s.listBackups)
		s.handleLed(r, http.MethodPost, "/v1/clusters/{cluster}/shards/{shard}/backups", auth.Operate, s.takeBackup)
		s.handleLed(r, http.MethodPost, "/v1/clusters/{cluster}/shards/{shard}/restore", auth.Admin, s.restore)
		s.handleLed(r, http.MethodPost, "/v1/clusters/{cluster}/shards/{shard}/nodes", auth.Admin, s.addNode)
		s.handleLed(r, http.MethodDelete, "/v1/clusters/{cluster}/shards/{shard}/nodes/{node}", auth.Admin, s.removeNode)

		s.handleLed(r, http.MethodGet, "/v1/events", auth.Read, s.listEvents)
		s.handleLed(r, http.MethodGet, "/v1/operations", auth.Read, s.listOperations)
		s.handleLed(r, http.MethodGet, "/v1/operations/{id}", auth.Read, s.getOperation)
		s.handleLed(r, http.MethodDelete, "/v1/operations/{id}", auth.Operate, s.cancelOperation)
		s.handleLed(r, http.MethodGet, "/v1/webhooks", auth.Admin, s.listWebhooks)
		s.handleLed(r, http.MethodPost, "/v1/webhooks", auth.Admin, s.putWebhook)
		s.handleLed(r, http.MethodDelete, "/v1/webhooks/{name}", auth.Admin, s.deleteWebhook)
		s.handleLed(r, http.MethodGet, "/v1/webhooks/{name}/deliveries", auth.Admin, s.webhookDeliveries)
		s.handleLed(r, http.MethodGet, "/v1/schedules", auth.Read, s.listSchedules)
		s.handleLed(r, http.MethodGet, "/v1/schedules/{id}", auth.Read, s.getSchedule)
		s.handleLed(r, http.MethodDelete, "/v1/schedules/{id}", auth.Operate, s.cancelSchedule)
	})
	return r
}

// handle registers h for method and pattern behind the token check for
// scope need; a mutation must also be JSON and is audited.
func (s *Service) handle(r chi.Router, method, pattern string, need auth.Scope, h http.HandlerFunc) {
	s.register(r, method, pattern, need, false, h)
}

// handleLed is handle for a route the leader serves.
func (s *Service) handleLed(r chi.Router, method, pattern string, need auth.Scope, h http.HandlerFunc) {
	s.register(r, method, pattern, need, true, h)
}

func (s *Service) register(r chi.Router, method, pattern string, need auth.Scope, leader bool, h http.HandlerFunc) {
	mw := []func(http.Handler) http.Handler{s.authorize(need, false)}
	if method != http.MethodGet && method != http.MethodHead {
		mw = append(mw, requireJSON, s.audited)
	}
	r.With(mw...).Method(method, pattern, h)
	s.endpoints = append(s.endpoints, Endpoint{Method: method, Pattern: pattern, Scope: need.String(), Leader: leader})
}

// Endpoint is a route as the service registered it: what the API's
// document must say of it.
type Endpoint struct {
	Method, Pattern string
	// Scope is the token scope it needs: open, read, operate, admin, or
	// peer (the group's peer credential only).
	Scope string
	// PeerOK: the peer credential is accepted too.
	PeerOK bool
	// Leader: served by the leader (a follower forwards it).
	Leader bool
}

// Endpoints returns the routes the service serves.
func (s *Service) Endpoints() []Endpoint { return append([]Endpoint(nil), s.endpoints...) }

func (s *Service) page(w http.ResponseWriter, r *http.Request, name string) {
	if !web.Serve(w, name) {
		writeProblem(w, r, api.Problem{Status: http.StatusNotFound, Detail: "no such file of the dashboard: " + name})
	}
}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openapi.Document())
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

package ha

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/clustermgr/clustermgr/pkg/action"
	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/detector"
	"github.com/clustermgr/clustermgr/pkg/keyring"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// Store is what the pipeline needs of the replicated store.
type Store interface {
	action.Store
	ID() string
	IsLeader() bool
	Leader() (id, apiAddr string)
	Info() (meta.ManagerInfo, error)
}

// Config tunes the pipeline.
type Config struct {
	ProbeInterval    time.Duration // default 500 ms
	ProbeTimeout     time.Duration // default 500 ms
	FailureThreshold int           // consecutive failed probes before a node is down; default 3
	AgentToken       string
	// HTTPTransport carries followers' views to the leader (TLS when the
	// group runs it); default http.DefaultTransport.
	HTTPTransport http.RoundTripper
	// AgentTransport carries calls to the agents (mutual TLS when they run
	// it); default http.DefaultTransport.
	AgentTransport http.RoundTripper
	// PeerToken, when set, authenticates followers' views sent to the
	// leader instead of the secret the group generates and keeps in Raft.
	PeerToken string
	// RejoinBackoff is the pause between rejoin attempts of one node.
	RejoinBackoff time.Duration
	// LeaseTTL is the primary lease the leader renews (every third of it)
	// through the primary's agent while it sees the primary healthy; it
	// is shorter than the failover detection time. Default 1.5 s.
	LeaseTTL time.Duration
	// NoRebuild leaves a node whose pg_rewind failed out (the rejoin
	// fails) instead of rebuilding it from a fresh base backup.
	NoRebuild bool
	Logger    *slog.Logger
	Now       func() time.Time
	// Keyring opens the secrets the group keeps sealed in Raft (the
	// clusters' passwords, the peer secret). Required.
	Keyring *keyring.Keyring
	// ObserveProbe, when set, is told each probe's duration and outcome.
	ObserveProbe func(d time.Duration, ok bool)
	// ObserveSkipped, when set, is told of probes a round did not make
	// (n of them) and why: "running" (the node's last probe still runs:
	// a hung or slow server), "queued" (it still waits for a worker: this
	// replica cannot keep up), "queue-full", or "late" (their slot came
	// more than half an interval late: a stalled replica). A node's probe
	// period stretches by an interval with each.
	ObserveSkipped func(reason string, n int)
	// OperationEnded, when set, is given each operation this replica ran
	// to its end (as the state records it then).
	OperationEnded func(op meta.Operation)
}

// Manager is one replica's HA pipeline, in three parts with a lock of
// their own: the observation (obs: views and votes, on every replica),
// the leader's per-shard workers (work: one decision round per shard at a
// time, so a hung node or agent holds up only its own shard), and the
// operation runner (ops: what runs in this leader term and the backoffs
// of what failed). The Manager holds the leader term and wires them.
type Manager struct {
	cfg   Config
	store Store
	det   *detector.Detector
	exec  *action.Executor
	log   *slog.Logger
	http  *http.Client

	obs  *observer
	work *workers
	ops  *opRunner
	// kick starts a leader round at once when a node goes down here or
	// in a follower's view, instead of at the next tick; viewKick sends a
	// follower's view at once when a node goes down here.
	kick, viewKick chan struct{}
	kickMu         sync.Mutex
	kicked         map[string]bool // shard keys kicked since the last round
	// asks (leader) and watch (follower): the primaries the leader asks
	// the followers to probe each round (watch.go).
	asks  *watchAsks
	watch *watchList
	// targetList is the last targets built, from the state of fleet
	// generation targetGen (targetsOK: every password opened).
	targetMu   sync.Mutex
	targetList []detector.Target
	targetGen  uint64
	targetsOK  bool
	// snapList is the shared snapshot of the fleet, of the state of
	// fleet generation snapGen (sharedSnapshot).
	snapMu   sync.Mutex
	snapList []shardSnap
	snapGen  uint64
	// snapSlots are snapList's shards by the slot their primaries'
	// leases are renewed in.
	snapSlots [leaseSlots][]*shardSnap
	// snapRounds are snapList's shards by the slot of the leader's
	// rounds they come in.
	snapRounds [roundSlots][]*shardSnap

	secretErr secretLog // rate-limits the log of secrets this replica cannot open
	fds       fdCheck   // warns when the fleet outgrows the open-file limit
	viewErr   secretLog // and of views the leader refused

	mu     sync.Mutex      // guards the leader term below
	term   context.Context // leader term, nil when not leading
	termWG *sync.WaitGroup
	// termStart is when this term began: a shard is decided on once every
	// node of it was probed after it.
	termStart time.Time
	leases    *leaseBook // the leases granted in this term
	// termWait bounds how long a request that reaches this replica
	// between its election and the start of its term waits for the term.
	termWait time.Duration
}

// New returns a pipeline over store.
func New(store Store, cfg Config) *Manager {
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = 500 * time.Millisecond
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 1500 * time.Millisecond
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = 500 * time.Millisecond
	}
	if cfg.FailureThreshold <= 0 {
		cfg.FailureThreshold = 3
	}
	if cfg.RejoinBackoff <= 0 {
		cfg.RejoinBackoff = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Keyring == nil {
		panic("ha.New: Config.Keyring is required")
	}
	m := &Manager{
		cfg: cfg, store: store, log: cfg.Logger.With("component", "ha"),
		det:  detector.New(cfg.ProbeTimeout, cfg.Now, store.ID()),
		http: &http.Client{Timeout: 2 * time.Second, Transport: cfg.HTTPTransport},
		kick: make(chan struct{}, 1), viewKick: make(chan struct{}, 1),
		work: newWorkers(),
		ops:  newOpRunner(),
		asks: newWatchAsks(), watch: newWatchList(),
		fds:      fdCheck{limit: openFileLimit},
		termWait: termStartWait,
	}
	m.obs = newObserver(cfg.FailureThreshold, cfg.ProbeInterval, cfg.ProbeTimeout, cfg.Now, store.ID, m.kickLeader, m.kickView, m.log)
	m.exec = &action.Executor{
		Store:      store,
		Password:   m.openPassword,
		Agents:     func(name string) action.Agent { return m.agentClient(name) },
		Log:        m.log,
		Now:        cfg.Now,
		NoRebuild:  cfg.NoRebuild,
		FencedBy:   m.fenceLease,
		RenewLease: m.RenewLease,
	}
	return m
}

// Executor returns the executor (tests set hooks on it).
func (m *Manager) Executor() *action.Executor { return m.exec }

// Detector returns the detector (tests cut probes with its Block hook).
func (m *Manager) Detector() *detector.Detector { return m.det }

func nodeKey(cluster, shard, node string) string { return cluster + "/" + shard + "/" + node }
func shardKey(cluster, shard string) string      { return cluster + "/" + shard }

// targets returns the registered nodes to probe, read-only: they are
// built again only when the state changed since the last call (or a
// cluster's password could not be opened then).
func (m *Manager) targets(ctx context.Context) []detector.Target {
	m.targetMu.Lock()
	defer m.targetMu.Unlock()
	_ = m.store.View(ctx, meta.Stale, func(st *meta.State) error {
		if m.targetsOK && m.targetGen == st.FleetGeneration {
			return nil
		}
		out := make([]detector.Target, 0, len(m.targetList))
		complete := true
		for _, c := range st.Clusters {
			pw, err := m.openPassword(c)
			if err != nil {
				// Not probed rather than probed without the password: a
				// refused login is no sign that a node is down.
				m.secretErr.log(m.log, c.Name, "open the password of cluster "+c.Name+"; its nodes are not probed", err)
				complete = false
				continue
			}
			user := c.Settings.PGUser
			if user == "" {
				user = "postgres"
			}
			for _, sh := range c.Shards {
				for _, n := range sh.Nodes {
					out = append(out, detector.Target{Key: nodeKey(c.Name, sh.Name, n.Name), Primary: n.Role == meta.RolePrimary,
						Host: n.Host, Port: n.Port, User: user, Password: pw})
				}
			}
		}
		m.targetList, m.targetGen, m.targetsOK = out, st.FleetGeneration, complete
		m.fds.check(len(out), m.log)
		return nil
	})
	return m.targetList
}

// sendView posts this follower's view to the leader.
func (m *Manager) sendView(ctx context.Context) {
	token := m.PeerToken()
	if token == "" {
		return
	}
	_, leaderAPI := m.store.Leader()
	if leaderAPI == "" {
		return
	}
	v := api.PeerView{Replica: m.store.ID(), Keys: m.cfg.Keyring.IDs(), Down: m.obs.down(), Level: meta.Level}
	body, _ := json.Marshal(v)
	hdr, err := m.postPeer(ctx, time.Second, leaderAPI, "/v1/internal/views", token, body)
	var refused *peerRefusal
	switch {
	case errors.As(err, &refused):
		// The leader counts no vote of this replica: a failover then
		// needs every other replica's.
		m.viewErr.log(m.log, "view", "the leader refused this replica's view of the fleet; its votes do not count", err)
	case err != nil:
		// What the leader said last still holds: a view lost to a slow
		// machine must not make this replica probe every primary.
		m.log.Debug("send view to leader", "err", err)
	default:
		m.watch.leaderAsks.Store(hdr.Get(api.WatchHeader) != "")
	}
}

// PeerToken returns the token followers' views must carry: the configured
// override, else the group's secret ("" until the first leader made one).
func (m *Manager) PeerToken() string {
	if m.cfg.PeerToken != "" {
		return m.cfg.PeerToken
	}
	var sealed string
	_ = m.store.View(context.Background(), meta.Stale, func(st *meta.State) error {
		sealed = st.PeerSecret
		return nil
	})
	secret, err := m.cfg.Keyring.Open(meta.PeerSecretPurpose, sealed)
	if err != nil && keyring.Sealed(sealed) {
		m.secretErr.log(m.log, "", "open the group's peer secret", err)
		return ""
	}
	if err != nil {
		// Kept in clear by an older version until the leader seals it.
		return sealed
	}
	return secret
}

// PeerKeys returns the secret key ids each follower reported in its last
// fresh view (leader side).
func (m *Manager) PeerKeys() map[string][]string { return m.obs.peerKeys() }

// ObservePeer records a follower's view (leader side).
func (m *Manager) ObservePeer(v api.PeerView) {
	for _, k := range m.obs.observePeer(v) {
		m.kickLeader(k)
	}
}

// kickLeader asks the leader loop for a round of the shard of node key
// now (a no-op on a follower, whose loop does not run).
func (m *Manager) kickLeader(node string) {
	shard := node
	if i := strings.LastIndexByte(node, '/'); i > 0 {
		shard = node[:i]
	}
	m.kickMu.Lock()
	if m.kicked == nil {
		m.kicked = map[string]bool{}
	}
	m.kicked[shard] = true
	m.kickMu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// takeKicked returns the shards kicked since the last call.
func (m *Manager) takeKicked() map[string]bool {
	m.kickMu.Lock()
	defer m.kickMu.Unlock()
	k := m.kicked
	m.kicked = nil
	return k
}

// votes returns how many replicas (this one included) see key down.
func (m *Manager) votes(key string, voters []string) int { return m.obs.votes(key, voters) }

func lsnString(l collector.LSN) string {
	if l == 0 {
		return ""
	}
	return l.String()
}

// agentClient is a client of the registered agent name. The agent token
// goes only to a registered agent's URL: an unregistered name gets a
// client whose every call fails, saying so.
func (m *Manager) agentClient(name string) *agent.Client {
	var u string
	_ = m.store.View(context.Background(), meta.Stale, func(st *meta.State) error {
		u = st.AgentURL(name)
		return nil
	})
	if u == "" {
		return agent.NewClientVia("unregistered-agent://"+name, "", nil)
	}
	return agent.NewClientVia(u, m.cfg.AgentToken, m.cfg.AgentTransport)
}

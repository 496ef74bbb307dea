package ha

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/clustermgr/clustermgr/pkg/action"
	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/detector"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/status"
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
}

// nodeState is what this replica knows of one node.
type nodeState struct {
	machine *status.Node
	last    detector.Result
	sample  *collector.Sample // latest successful sample
	// upSince is the first of the current run of answered probes;
	// streamedAt the last probe that found a streaming WAL receiver.
	upSince, streamedAt time.Time
	// lastOK is the time of the previous answered probe.
	lastOK time.Time
}

type peerView struct {
	at   time.Time
	down map[string]bool
}

// Manager is one replica's HA pipeline.
type Manager struct {
	cfg   Config
	store Store
	det   *detector.Detector
	exec  *action.Executor
	log   *slog.Logger
	http  *http.Client

	mu        sync.Mutex
	nodes     map[string]*nodeState
	peers     map[string]peerView
	decisions map[string]api.Decision // shard key → last decision
	noted     map[string]string       // shard key → last refusal recorded as an event
	rejoinAt  map[string]time.Time    // node key → earliest next rejoin attempt
	// rejoinFails counts a node's failed rejoins in a row; watching marks
	// the nodes whose unreachable agent a watcher polls.
	rejoinFails map[string]int
	// deciding marks the shards whose round worker runs (leader only).
	deciding map[string]bool
	// kick starts a leader round at once when a node goes down here or
	// in a follower's view, instead of at the next tick.
	kick     chan struct{}
	watching map[string]bool
	running  map[string]*runningOp // shard key → operation executing in this term
	// routineRetry holds back a failed routine change (shard key#kind).
	routineRetry map[string]routineRetry
	recorded     map[string]string    // node or shard key → last state recorded as an event
	opEnded      map[string]time.Time // shard key → when its last operation ended
	term         context.Context      // leader term, nil when not leading
	termWG       *sync.WaitGroup
	leases       *leaseBook // the leases granted in this term
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
	m := &Manager{
		cfg: cfg, store: store, log: cfg.Logger.With("component", "ha"),
		det:   detector.New(cfg.ProbeTimeout, cfg.Now),
		http:  &http.Client{Timeout: 2 * time.Second},
		nodes: map[string]*nodeState{}, peers: map[string]peerView{}, decisions: map[string]api.Decision{},
		kick:  make(chan struct{}, 1),
		noted: map[string]string{}, rejoinAt: map[string]time.Time{}, rejoinFails: map[string]int{}, deciding: map[string]bool{}, watching: map[string]bool{}, running: map[string]*runningOp{}, routineRetry: map[string]routineRetry{}, recorded: map[string]string{}, opEnded: map[string]time.Time{},
	}
	m.exec = &action.Executor{
		Store:     store,
		Agents:    func(url string) action.Agent { return agent.NewClient(url, cfg.AgentToken) },
		Log:       m.log,
		Now:       cfg.Now,
		NoRebuild: cfg.NoRebuild,
		FencedBy:  m.FencedBy,
	}
	return m
}

// Executor returns the executor (tests set hooks on it).
func (m *Manager) Executor() *action.Executor { return m.exec }

// Detector returns the detector (tests cut probes with its Block hook).
func (m *Manager) Detector() *detector.Detector { return m.det }

func nodeKey(cluster, shard, node string) string { return cluster + "/" + shard + "/" + node }
func shardKey(cluster, shard string) string      { return cluster + "/" + shard }

// RunDetector probes every registered node each interval until ctx ends.
// Every replica runs it; a follower sends what it sees down to the leader.
func (m *Manager) RunDetector(ctx context.Context) {
	defer m.det.Close()
	t := time.NewTicker(m.cfg.ProbeInterval)
	defer t.Stop()
	for {
		m.probeRound(ctx)
		if !m.store.IsLeader() {
			m.sendView(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *Manager) targets(ctx context.Context) []detector.Target {
	var out []detector.Target
	_ = m.store.View(ctx, meta.Stale, func(st *meta.State) error {
		for _, c := range st.Clusters {
			for _, sh := range c.Shards {
				for _, n := range sh.Nodes {
					user := c.Settings.PGUser
					if user == "" {
						user = "postgres"
					}
					out = append(out, detector.Target{Key: nodeKey(c.Name, sh.Name, n.Name), Host: n.Host, Port: n.Port, User: user, Password: c.Settings.PGPassword})
				}
			}
		}
		return nil
	})
	return out
}

func (m *Manager) probeRound(ctx context.Context) {
	targets := m.targets(ctx)
	results := make([]detector.Result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = m.det.Probe(ctx, t)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for _, r := range results {
		seen[r.Key] = true
		ns, ok := m.nodes[r.Key]
		if !ok {
			ns = &nodeState{machine: status.NewNode(m.cfg.FailureThreshold)}
			m.nodes[r.Key] = ns
		}
		ev := status.ProbeOK
		switch {
		case r.Refused:
			ev = status.ProbeRefused
		case !r.OK:
			ev = status.ProbeFailed
		}
		before := ns.machine.State()
		after, changed := ns.machine.Observe(ev)
		ns.last = r
		if r.OK {
			if ns.sample == nil || before != status.Healthy {
				ns.upSince = r.At
			}
			wasStreaming := !ns.streamedAt.IsZero() && ns.streamedAt.Equal(ns.lastOK)
			ns.sample = r.Sample
			if rc := r.Sample.Receiver; rc != nil && rc.Status == "streaming" {
				ns.streamedAt = r.At
			} else if wasStreaming && r.Sample.InRecovery {
				// A receiver that stops may be the last thing holding a
				// failover back: decide now, not at the next tick.
				m.kickLeader()
			}
			ns.lastOK = r.At
		}
		if changed && before != status.Unknown {
			m.log.Info("node health changed", "node", r.Key, "from", before, "to", after, "err", r.Err)
		}
		if changed && after == status.Down {
			m.kickLeader()
		}
	}
	for k := range m.nodes {
		if !seen[k] {
			delete(m.nodes, k)
			m.det.Forget(k)
		}
	}
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
	v := api.PeerView{Replica: m.store.ID(), Down: []string{}, Probed: []string{}}
	m.mu.Lock()
	for k, ns := range m.nodes {
		v.Probed = append(v.Probed, k)
		if ns.machine.State() == status.Down {
			v.Down = append(v.Down, k)
		}
	}
	m.mu.Unlock()
	sort.Strings(v.Down)
	body, _ := json.Marshal(v)
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, strings.TrimSuffix(leaderAPI, "/")+"/v1/internal/views", bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(api.ForwardedHeader, m.store.ID())
	resp, err := m.http.Do(req)
	if err != nil {
		m.log.Debug("send view to leader", "err", err)
		return
	}
	resp.Body.Close()
}

// PeerToken returns the token followers' views must carry: the configured
// override, else the group's secret ("" until the first leader made one).
func (m *Manager) PeerToken() string {
	if m.cfg.PeerToken != "" {
		return m.cfg.PeerToken
	}
	var secret string
	_ = m.store.View(context.Background(), meta.Stale, func(st *meta.State) error {
		secret = st.PeerSecret
		return nil
	})
	return secret
}

// ensurePeerSecret makes the group's peer secret when there is none yet
// (leader only; the FSM keeps the first one).
func (m *Manager) ensurePeerSecret(ctx context.Context) error {
	if m.PeerToken() != "" {
		return nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("generate peer secret: %w", err)
	}
	return m.store.Apply(ctx, &meta.SetPeerSecret{Secret: hex.EncodeToString(b)})
}

// ObservePeer records a follower's view (leader side).
func (m *Manager) ObservePeer(v api.PeerView) {
	down := map[string]bool{}
	for _, k := range v.Down {
		down[k] = true
	}
	m.mu.Lock()
	prev := m.peers[v.Replica].down
	m.peers[v.Replica] = peerView{at: m.cfg.Now(), down: down}
	m.mu.Unlock()
	for k := range down {
		if !prev[k] {
			m.kickLeader()
			break
		}
	}
}

// kickLeader asks the leader loop for a round now (no-op on a follower,
// whose loop does not run, and when a round is already asked for).
func (m *Manager) kickLeader() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// votes returns how many replicas (this one included) see key down, and
// the number of voters in the group.
func (m *Manager) votes(key string, voters []string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	if ns, ok := m.nodes[key]; ok && ns.machine.State() == status.Down {
		n++
	}
	fresh := m.cfg.Now().Add(-5 * m.cfg.ProbeInterval)
	for _, id := range voters {
		if id == m.store.ID() {
			continue
		}
		if pv, ok := m.peers[id]; ok && pv.at.After(fresh) && pv.down[key] {
			n++
		}
	}
	return n
}

func lsnString(l collector.LSN) string {
	if l == 0 {
		return ""
	}
	return l.String()
}

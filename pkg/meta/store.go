package meta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Store is one manager replica's view of the Raft group and its state.
type Store struct {
	cfg    Config
	log    *slog.Logger
	fsm    *FSM
	raft   *raft.Raft
	trans  raft.Transport
	closer []func() error

	notifyCh chan bool
	stop     chan struct{}
	wg       sync.WaitGroup // monitorLeadership

	leaderMu     sync.Mutex
	leaderCancel context.CancelFunc
	leaderWG     *sync.WaitGroup

	closeOnce sync.Once
}

// Open starts a replica: it opens (or creates) the Raft log under DataDir,
// bootstraps the group from Peers when there is no state yet, and starts
// the leadership loop.
func Open(c Config) (*Store, error) {
	cfg := c.withDefaults()
	if cfg.NodeID == "" {
		return nil, errors.New("open store: node id is required")
	}
	s := &Store{
		cfg:      cfg,
		log:      cfg.Logger.With("node_id", cfg.NodeID),
		fsm:      NewFSM(),
		notifyCh: make(chan bool, 16),
		stop:     make(chan struct{}),
	}
	if err := s.open(); err != nil {
		s.closeResources()
		return nil, err
	}
	s.wg.Add(1)
	go s.monitorLeadership()
	return s, nil
}

func (s *Store) open() error {
	cfg := s.cfg
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.Timing.HeartbeatTimeout
	rc.ElectionTimeout = cfg.Timing.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.Timing.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.Timing.CommitTimeout
	rc.SnapshotInterval = cfg.Timing.SnapshotInterval
	rc.SnapshotThreshold = cfg.Timing.SnapshotThreshold
	rc.TrailingLogs = cfg.Timing.TrailingLogs
	rc.MaxAppendEntries = cfg.Timing.MaxAppendEntries
	rc.NotifyCh = s.notifyCh
	rc.Logger = newRaftLogger(s.log)
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("raft settings: %w", err)
	}

	var (
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
	)
	if cfg.InMemory {
		mem := raft.NewInmemStore()
		logs, stable, snaps = mem, mem, raft.NewInmemSnapshotStore()
	} else {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("create data dir: %w", err)
		}
		// The log and snapshots hold the group's secrets: only this
		// replica's user may enter the directory.
		if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db")})
		if err != nil {
			return fmt.Errorf("open raft log %s: %w", filepath.Join(cfg.DataDir, "raft.db"), err)
		}
		s.closer = append(s.closer, bolt.Close)
		cached, err := raft.NewLogCache(512, bolt)
		if err != nil {
			return fmt.Errorf("create log cache: %w", err)
		}
		logs, stable = cached, bolt
		fs, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, rc.Logger)
		if err != nil {
			return fmt.Errorf("open snapshot store: %w", err)
		}
		snaps = fs
	}

	s.trans = cfg.Transport
	if s.trans == nil {
		addr, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
		if err != nil {
			return fmt.Errorf("resolve raft address %q: %w", cfg.RaftAddr, err)
		}
		// One append request in flight per follower: hashicorp/raft's
		// pipelined replication can park for good when a follower
		// refuses an append (its decoder stops reading while the sender
		// waits for room), and the follower then gets heartbeats and no
		// entry again, while the leader's shutdown waits on it forever.
		// The group's writes are few; a round trip each costs nothing.
		tc := &raft.NetworkTransportConfig{MaxPool: 3, Timeout: 10 * time.Second, Logger: rc.Logger, MaxRPCsInFlight: 1}
		var tcp *raft.NetworkTransport
		if cfg.TLS != nil {
			stream, err := newTLSStream(cfg.RaftAddr, addr, cfg.TLS)
			if err != nil {
				return err
			}
			tc.Stream = stream
			tcp = raft.NewNetworkTransportWithConfig(tc)
		} else {
			tcp, err = raft.NewTCPTransportWithConfig(cfg.RaftAddr, addr, tc)
			if err != nil {
				return fmt.Errorf("listen on raft address %s: %w", cfg.RaftAddr, err)
			}
		}
		g := &guardedTransport{NetworkTransport: tcp}
		s.trans = g
		// Closers run last first: the heartbeats stop before the
		// transport and the stores close.
		s.closer = append(s.closer, tcp.Close, func() error { g.closeHeartbeats(); return nil })
	}

	existing, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return fmt.Errorf("inspect raft state: %w", err)
	}
	r, err := raft.NewRaft(rc, s.fsm, logs, stable, snaps, s.trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	s.raft = r
	if existing {
		s.log.Info("resuming from existing raft state")
		return nil
	}
	if len(cfg.Peers) == 0 {
		s.log.Info("no raft state and no peers: waiting to be joined")
		return nil
	}
	var servers []raft.Server
	self := false
	for _, p := range cfg.Peers {
		servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr), Suffrage: raft.Voter})
		self = self || p.ID == cfg.NodeID
	}
	if !self {
		s.log.Info("no raft state and this replica is not among the peers: waiting to be joined")
		return nil
	}
	if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap raft group: %w", err)
	}
	s.log.Info("bootstrapped raft group", "peers", len(servers))
	return nil
}

// Close stops leader work, shuts Raft down and closes the log. It is safe to
// call more than once.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.revokeLeadership()
		if s.raft != nil {
			if e := s.raft.Shutdown().Error(); e != nil {
				err = fmt.Errorf("shut down raft: %w", e)
			}
		}
		if e := s.closeResources(); e != nil && err == nil {
			err = e
		}
	})
	return err
}

func (s *Store) closeResources() error {
	var first error
	for i := len(s.closer) - 1; i >= 0; i-- {
		if err := s.closer[i](); err != nil && first == nil {
			first = err
		}
	}
	s.closer = nil
	return first
}

// ID returns this replica's id.
func (s *Store) ID() string { return s.cfg.NodeID }

// Snapshot writes a snapshot of the state now and compacts the log
// behind it (keeping the configured trailing entries).
func (s *Store) Snapshot() error {
	if err := s.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// RaftAddr returns the address other replicas reach this one at: the
// configured one, as the peers list spells it, else the transport's.
func (s *Store) RaftAddr() string {
	if s.cfg.RaftAddr != "" && s.cfg.Transport == nil {
		return s.cfg.RaftAddr
	}
	return string(s.trans.LocalAddr())
}

// APIAddr returns this replica's API address.
func (s *Store) APIAddr() string { return s.cfg.APIAddr }

// IsLeader reports whether this replica is the Raft leader.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the leader's id and recorded API address, empty when not
// known.
func (s *Store) Leader() (id, apiAddr string) {
	_, lid := s.raft.LeaderWithID()
	id = string(lid)
	if id == "" {
		return "", ""
	}
	_ = s.fsm.View(func(st *State) error {
		if m, ok := st.Members[id]; ok {
			apiAddr = m.APIAddr
		}
		return nil
	})
	return id, apiAddr
}

func (s *Store) notLeader() error {
	id, api := s.Leader()
	return &NotLeaderError{LeaderID: id, LeaderAPIAddr: api}
}

// Apply proposes cmd and waits until it is applied on this replica (the
// leader). The leader stamps the proposal time into the command. A command
// rejected by the FSM returns its *Error; a follower returns
// *NotLeaderError.
func (s *Store) Apply(ctx context.Context, cmd Command) error {
	if s.raft.State() != raft.Leader {
		return s.notLeader()
	}
	start := time.Now()
	err := s.apply(ctx, cmd)
	if s.cfg.OnApply != nil {
		outcome := "ok"
		var me *Error
		switch {
		case errors.As(err, &me):
			outcome = "refused"
		case err != nil:
			outcome = "error"
		}
		s.cfg.OnApply(time.Since(start), outcome)
	}
	return err
}

func (s *Store) apply(ctx context.Context, cmd Command) error {
	cmd.stamp(s.cfg.Now())
	data, err := Encode(cmd)
	if err != nil {
		return err
	}
	// Validate, then commit: a command the current state refuses is not
	// proposed (it would cost log space on every replica for nothing).
	if err := s.fsm.Check(data); err != nil {
		return err
	}
	timeout := s.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return fmt.Errorf("apply command %d: %w", cmd.Type(), context.DeadlineExceeded)
		}
	}
	f := s.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return s.notLeader()
		}
		return fmt.Errorf("apply command %d: %w", cmd.Type(), err)
	}
	if err, ok := f.Response().(error); ok {
		return err
	}
	return nil
}

// Consistency is the level of a read.
type Consistency int

// Read levels.
const (
	// Stale reads this replica's state as it is: fast, possibly behind.
	Stale Consistency = iota
	// LeaderRead reads on the leader without confirming it still leads: a
	// deposed leader may serve it for up to a lease timeout.
	LeaderRead
	// Linearizable confirms leadership with a quorum and waits until the
	// commit index seen before the check is applied (Raft thesis §6.4).
	Linearizable
)

// ParseConsistency parses "stale", "leader" or "linearizable".
func ParseConsistency(v string) (Consistency, error) {
	switch v {
	case "stale", "none":
		return Stale, nil
	case "", "leader", "weak":
		return LeaderRead, nil
	case "linearizable", "strong":
		return Linearizable, nil
	}
	return 0, invalid("consistency", "%q is not stale, leader or linearizable", v)
}

// View runs fn over the state at the requested consistency. fn runs under
// the FSM's read lock and must not keep what it is given.
func (s *Store) View(ctx context.Context, c Consistency, fn func(*State) error) error {
	switch c {
	case LeaderRead:
		if s.raft.State() != raft.Leader {
			return s.notLeader()
		}
	case Linearizable:
		if err := s.waitLinearizable(ctx); err != nil {
			return err
		}
	}
	return s.fsm.View(fn)
}

func (s *Store) waitLinearizable(ctx context.Context) error {
	if s.raft.State() != raft.Leader {
		return s.notLeader()
	}
	commit := s.raft.CommitIndex()
	if err := s.raft.VerifyLeader().Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return s.notLeader()
		}
		return fmt.Errorf("verify leadership: %w", err)
	}
	for s.raft.AppliedIndex() < commit {
		t := time.NewTimer(time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for applied index %d: %w", commit, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

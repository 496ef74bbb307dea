package meta

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/clustermgr/clustermgr/pkg/fencing"
)

// monitorLeadership reads raft's leadership notifications and runs exactly
// one leader term's worth of work at a time: establish on gain, revoke on
// loss. It exits when the store closes.
func (s *Store) monitorLeadership() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case isLeader := <-s.notifyCh:
			if isLeader {
				s.establishLeadership()
			} else {
				s.revokeLeadership()
			}
		}
	}
}

// establishLeadership starts the leader term: Barrier so the FSM holds every
// entry of earlier terms, record this replica's API address, then start the
// leader tasks. It runs asynchronously so that a loss notification arriving
// during the barrier is handled at once.
func (s *Store) establishLeadership() {
	s.revokeLeadership()
	ctx, cancel := context.WithCancel(context.Background())
	wg := &sync.WaitGroup{}
	s.leaderMu.Lock()
	s.leaderCancel, s.leaderWG = cancel, wg
	s.leaderMu.Unlock()

	wg.Add(1)
	go func() {
		defer wg.Done()
		if !s.barrier(ctx) {
			return
		}
		term, ok := s.leaderTerm()
		if !ok {
			return // lost already; the loss notification follows
		}
		ctx := fencing.WithTerm(ctx, term)
		s.recordSelf(ctx)
		s.log.Info("leadership established", "term", term)
		for _, task := range s.cfg.LeaderTasks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				task(ctx)
			}()
		}
	}()
}

// leaderTerm is the term this replica leads in. The term is read on both
// sides of the leadership check, so that a term begun by another replica
// in between is never taken as this replica's: the leader-only work
// carries it to the agents as its fencing token (pkg/fencing).
func (s *Store) leaderTerm() (uint64, bool) {
	t1 := s.raft.CurrentTerm()
	leading := s.raft.State() == raft.Leader
	t2 := s.raft.CurrentTerm()
	return t1, leading && t1 == t2
}

// barrier waits until every entry of earlier terms is applied. It retries
// until it succeeds or leadership is lost.
func (s *Store) barrier(ctx context.Context) bool {
	for ctx.Err() == nil {
		err := s.raft.Barrier(s.cfg.ApplyTimeout).Error()
		if err == nil {
			return true
		}
		s.log.Warn("barrier after gaining leadership failed", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}

// recordSelf writes this replica's member record when it is missing or out
// of date, so that followers can forward to this leader's API.
func (s *Store) recordSelf(ctx context.Context) {
	want := Member{ID: s.cfg.NodeID, RaftAddr: s.RaftAddr(), APIAddr: s.cfg.APIAddr}
	var have Member
	_ = s.fsm.View(func(st *State) error {
		if m, ok := st.Members[want.ID]; ok {
			have = *m
		}
		return nil
	})
	if have == want {
		return
	}
	if err := s.Apply(ctx, &SetMember{Member: want}); err != nil {
		s.log.Warn("record own member entry", "err", err)
	}
}

// revokeLeadership cancels the leader term's work and waits for every
// routine to return. It is idempotent.
func (s *Store) revokeLeadership() {
	s.leaderMu.Lock()
	cancel, wg := s.leaderCancel, s.leaderWG
	s.leaderCancel, s.leaderWG = nil, nil
	s.leaderMu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	wg.Wait()
	s.log.Info("leadership revoked")
}

package meta

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// MemberInfo describes one replica of the group.
type MemberInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
}

// ManagerInfo is this replica's view of the group.
type ManagerInfo struct {
	NodeID        string `json:"node_id"`
	State         string `json:"state"`
	LeaderID      string `json:"leader_id"`
	LeaderAPIAddr string `json:"leader_api_addr"`
	Term          uint64 `json:"term"`
	CommitIndex   uint64 `json:"commit_index"`
	AppliedIndex  uint64 `json:"applied_index"`
	LastIndex     uint64 `json:"last_index"`
	// AppliedBytes is the size of the commands applied since this
	// replica started; LastSnapshot the last snapshot it wrote since.
	AppliedBytes uint64       `json:"applied_bytes"`
	LastSnapshot SnapshotInfo `json:"last_snapshot"`
	Members      []MemberInfo `json:"members"`
}

// Info returns this replica's view of the group.
func (s *Store) Info() (ManagerInfo, error) {
	lid, lapi := s.Leader()
	info := ManagerInfo{
		NodeID:        s.cfg.NodeID,
		State:         s.raft.State().String(),
		LeaderID:      lid,
		LeaderAPIAddr: lapi,
		Term:          s.raft.CurrentTerm(),
		CommitIndex:   s.raft.CommitIndex(),
		AppliedIndex:  s.raft.AppliedIndex(),
		LastIndex:     s.raft.LastIndex(),
		AppliedBytes:  s.fsm.AppliedBytes(),
		LastSnapshot:  s.fsm.LastSnapshot(),
		Members:       []MemberInfo{},
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return info, fmt.Errorf("read raft configuration: %w", err)
	}
	_ = s.fsm.View(func(st *State) error {
		for _, srv := range f.Configuration().Servers {
			m := MemberInfo{ID: string(srv.ID), RaftAddr: string(srv.Address), Voter: srv.Suffrage == raft.Voter, Leader: string(srv.ID) == lid}
			if rec, ok := st.Members[m.ID]; ok {
				m.APIAddr = rec.APIAddr
			}
			info.Members = append(info.Members, m)
		}
		return nil
	})
	return info, nil
}

// Join adds a voter (leader only). It is idempotent: joining a member that
// is already a voter at the same address only refreshes its record; a known
// id at a new address is replaced.
func (s *Store) Join(ctx context.Context, id, raftAddr, apiAddr string) error {
	if id == "" {
		return invalid("id", "is required")
	}
	if raftAddr == "" {
		return invalid("raft_addr", "is required")
	}
	if s.raft.State() != raft.Leader {
		return s.notLeader()
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	present := false
	for _, srv := range f.Configuration().Servers {
		sameID, sameAddr := srv.ID == raft.ServerID(id), srv.Address == raft.ServerAddress(raftAddr)
		switch {
		case sameID && sameAddr && srv.Suffrage == raft.Voter:
			present = true
		case sameID && sameAddr:
		case sameID || sameAddr:
			return conflict("raft address %s or id %s is already used by member %s at %s; remove it first", raftAddr, id, srv.ID, srv.Address)
		}
	}
	if !present {
		if err := s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, s.timeout(ctx)).Error(); err != nil {
			return s.raftErr("add voter "+id, err)
		}
		s.log.Info("member joined", "member", id, "raft_addr", raftAddr)
	}
	return s.Apply(ctx, &SetMember{Member: Member{ID: id, RaftAddr: raftAddr, APIAddr: apiAddr}})
}

// Remove removes a member (leader only). Removing an unknown member is not
// an error. The leader removing itself steps down afterwards.
func (s *Store) Remove(ctx context.Context, id string) error {
	if id == "" {
		return invalid("id", "is required")
	}
	if s.raft.State() != raft.Leader {
		return s.notLeader()
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	known := false
	for _, srv := range f.Configuration().Servers {
		known = known || srv.ID == raft.ServerID(id)
	}
	// Forget the record first: once the leader removes itself it can no
	// longer write.
	if err := s.Apply(ctx, &RemoveMember{ID: id}); err != nil {
		return err
	}
	if !known {
		return nil
	}
	if err := s.raft.RemoveServer(raft.ServerID(id), 0, s.timeout(ctx)).Error(); err != nil {
		return s.raftErr("remove member "+id, err)
	}
	s.log.Info("member removed", "member", id)
	return nil
}

// TransferLeadership hands leadership to member to, or to the most
// up-to-date follower when to is empty.
func (s *Store) TransferLeadership(ctx context.Context, to string) error {
	if s.raft.State() != raft.Leader {
		return s.notLeader()
	}
	if to == s.cfg.NodeID {
		return nil
	}
	// Raft gives a transfer one election timeout to catch the target up
	// and have it elected; a loaded target misses it now and then. A
	// transfer that timed out is tried again while this replica still
	// leads, up to transferAttempts times or the end of ctx.
	var err error
	for attempt := 1; ; attempt++ {
		err = s.transferOnce(to)
		if err == nil || attempt == transferAttempts || !transferTimedOut(err) || s.raft.State() != raft.Leader || ctx.Err() != nil {
			break
		}
		s.log.Info("leadership transfer timed out; trying again", "to", to, "attempt", attempt)
	}
	if err != nil && transferTimedOut(err) && s.raft.State() != raft.Leader {
		// It timed out, and yet leadership moved (the target won its
		// election late): the transfer happened.
		return nil
	}
	if err != nil {
		return s.raftErr("transfer leadership", err)
	}
	return nil
}

// transferAttempts bounds the tries of one leadership transfer.
const transferAttempts = 5

// transferTimedOut says whether a transfer failed for want of time (the
// library reports it only in the error's text) or because another one
// was still finishing.
func transferTimedOut(err error) bool {
	return errors.Is(err, raft.ErrLeadershipTransferInProgress) || strings.Contains(err.Error(), "leadership transfer timeout")
}

// transferOnce asks Raft for one leadership transfer to the voter to, or
// to the most up-to-date follower when to is "".
func (s *Store) transferOnce(to string) error {
	var f raft.Future
	if to == "" {
		f = s.raft.LeadershipTransfer()
	} else {
		cf := s.raft.GetConfiguration()
		if err := cf.Error(); err != nil {
			return fmt.Errorf("read raft configuration: %w", err)
		}
		var addr raft.ServerAddress
		for _, srv := range cf.Configuration().Servers {
			if srv.ID == raft.ServerID(to) && srv.Suffrage == raft.Voter {
				addr = srv.Address
			}
		}
		if addr == "" {
			return notFound("member %q is not a voter of the group", to)
		}
		f = s.raft.LeadershipTransferToServer(raft.ServerID(to), addr)
	}
	return f.Error()
}

// WaitForLeader blocks until a leader with a recorded API address is known.
func (s *Store) WaitForLeader(ctx context.Context) (string, error) {
	for {
		if id, api := s.Leader(); id != "" && api != "" {
			return id, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wait for leader: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Store) timeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return s.cfg.ApplyTimeout
}

func (s *Store) raftErr(what string, err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return s.notLeader()
	}
	return fmt.Errorf("%s: %w", what, err)
}

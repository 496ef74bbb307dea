package service

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

func (s *Service) health(w http.ResponseWriter, r *http.Request) {
	info, err := s.store.Info()
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Health{Status: "ok", NodeID: info.NodeID, State: info.State})
}

func (s *Service) manager(w http.ResponseWriter, r *http.Request) {
	info, err := s.store.Info()
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIManager(info))
}

func (s *Service) joinMember(w http.ResponseWriter, r *http.Request) {
	var req api.JoinRequest
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	if err := validateJoin(req); err != nil {
		writeError(w, r, err)
		return
	}
	if principalOf(r).name == peerName {
		if err := s.checkPeerJoin(r, req); err != nil {
			writeError(w, r, err)
			return
		}
	}
	if err := s.store.Join(r.Context(), req.ID, req.RaftAddr, req.APIAddr); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.Member{ID: req.ID, RaftAddr: req.RaftAddr, APIAddr: req.APIAddr, Voter: true})
}

func (s *Service) removeMember(w http.ResponseWriter, r *http.Request) {
	if err := s.store.Remove(r.Context(), chi.URLParam(r, "id")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) transferLeadership(w http.ResponseWriter, r *http.Request) {
	var req api.TransferRequest
	if err := decodeBody(r, &req, true); err != nil {
		writeError(w, r, err)
		return
	}
	from := s.store.ID()
	if err := s.store.TransferLeadership(r.Context(), req.To); err != nil {
		writeError(w, r, err)
		return
	}
	// This replica learns the new leader from its first heartbeat.
	to := waitNewLeader(r.Context(), s.store, from, 2*time.Second)
	if to == "" {
		to = req.To
	}
	writeJSON(w, http.StatusAccepted, api.TransferResult{From: from, To: to})
}

// checkPeerJoin limits what the peer credential may record: the API
// address of a replica that is already a voter at that Raft address and
// has none recorded yet (or the same), and never the leader's own record
// (the leader keeps it). Adding a replica, moving one to another Raft
// address or changing a recorded API address needs an admin token; a
// replica's own record is also rewritten when it next leads.
func (s *Service) checkPeerJoin(r *http.Request, req api.JoinRequest) error {
	if req.ID == s.store.ID() {
		return &meta.Error{Kind: meta.KindConflict, Field: "id", Msg: req.ID + " is the leader; it records its own address"}
	}
	info, err := s.store.Info()
	if err != nil {
		return err
	}
	for _, m := range info.Members {
		if m.ID == req.ID && m.RaftAddr == req.RaftAddr && m.Voter {
			if m.APIAddr != "" && m.APIAddr != req.APIAddr {
				return &meta.Error{Kind: meta.KindConflict, Field: "api_addr", Msg: fmt.Sprintf("%s's API address is recorded as %s; changing it needs an admin token (or %s records it when it next leads)",
					req.ID, m.APIAddr, req.ID)}
			}
			return nil
		}
	}
	return &meta.Error{Kind: meta.KindConflict, Field: "id", Msg: req.ID + " at " + req.RaftAddr + " is not a voter of the group; adding a replica needs an admin token"}
}

// waitNewLeader returns the leader once it is known and is not from, or
// "" after d.
func waitNewLeader(ctx context.Context, st Store, from string, d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		if id, _ := st.Leader(); id != "" && id != from {
			return id
		}
		if time.Now().After(deadline) {
			return ""
		}
		select {
		case <-ctx.Done():
			return ""
		case <-time.After(20 * time.Millisecond):
		}
	}
}

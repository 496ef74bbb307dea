package service

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/clustermgr/clustermgr/pkg/api"
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
	to, _ := s.store.Leader()
	if to == from {
		to = req.To
	}
	writeJSON(w, http.StatusAccepted, api.TransferResult{From: from, To: to})
}

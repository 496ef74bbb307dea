package service

import (
	"net/http"
	"sort"

	"github.com/go-chi/chi/v5"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

func (s *Service) listAgents(w http.ResponseWriter, r *http.Request) {
	listFromState(s, w, r, func(st *meta.State) []api.Agent {
		var out []api.Agent
		for _, a := range st.Agents {
			out = append(out, api.Agent{Name: a.Name, URL: a.URL, HealthURL: a.HealthURL, CreatedAt: a.CreatedAt})
		}
		return out
	}, func(a api.Agent) string { return a.Name })
}

// listFromState answers what collect gathers from the state, sorted by
// key, as a JSON list (never null).
func listFromState[T any](s *Service, w http.ResponseWriter, r *http.Request, collect func(*meta.State) []T, key func(T) string) {
	out := []T{}
	if err := s.view(r, func(st *meta.State) error {
		out = append(out, collect(st)...)
		return nil
	}); err != nil {
		writeError(w, r, err)
		return
	}
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	writeJSON(w, http.StatusOK, out)
}

// putAgent registers an agent (or moves it to a new URL): nodes name it,
// and only registered agents get the agent token and credentials.
func (s *Service) putAgent(w http.ResponseWriter, r *http.Request) {
	var req api.Agent
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	if err := s.store.Apply(r.Context(), &meta.PutAgent{Agent: meta.AgentRecord{Name: req.Name, URL: req.URL, HealthURL: req.HealthURL}}); err != nil {
		writeError(w, r, err)
		return
	}
	var out api.Agent
	_ = s.store.View(r.Context(), meta.Stale, func(st *meta.State) error {
		if a := st.Agents[req.Name]; a != nil {
			out = api.Agent{Name: a.Name, URL: a.URL, HealthURL: a.HealthURL, CreatedAt: a.CreatedAt}
		}
		return nil
	})
	writeJSON(w, http.StatusCreated, out)
}

func (s *Service) deleteAgent(w http.ResponseWriter, r *http.Request) {
	if err := s.store.Apply(r.Context(), &meta.DeleteAgent{Name: chi.URLParam(r, "name")}); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

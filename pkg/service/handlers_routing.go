package service

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/routing"
)

// connection answers a shard's libpq connection strings.
func (s *Service) connection(w http.ResponseWriter, r *http.Request) {
	cluster, shard := chi.URLParam(r, "cluster"), chi.URLParam(r, "shard")
	var out api.Connection
	err := s.view(r, func(st *meta.State) error {
		sh, err := lookupShard(st, cluster, shard)
		if err != nil {
			return err
		}
		out = routing.Connection(cluster, shard, st.Clusters[cluster].Settings.PGUser, toAPIShard(cluster, sh).Nodes)
		return nil
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// maintenance puts a node in maintenance (on) or takes it out, and
// answers the shard.
func (s *Service) maintenance(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req api.MaintenanceRequest
		if on {
			if err := decodeBody(r, &req, true); err != nil {
				writeError(w, r, err)
				return
			}
		}
		cluster, shard := chi.URLParam(r, "cluster"), chi.URLParam(r, "shard")
		cmd := &meta.SetMaintenance{Cluster: cluster, Shard: shard, Node: chi.URLParam(r, "node"), On: on, Reason: req.Reason}
		if err := s.store.Apply(r.Context(), cmd); err != nil {
			writeError(w, r, err)
			return
		}
		s.respondShard(w, r, http.StatusOK, cluster, shard)
	}
}

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

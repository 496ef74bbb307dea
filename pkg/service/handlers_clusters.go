package service

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/clustermgr/clustermgr/pkg/action"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/auth"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// view reads the state at the consistency the request asks for.
func (s *Service) view(r *http.Request, fn func(*meta.State) error) error {
	c, err := consistency(r)
	if err != nil {
		return err
	}
	return s.store.View(r.Context(), c, fn)
}

func notFoundErr(format string, args ...any) error {
	return &meta.Error{Kind: meta.KindNotFound, Msg: sprintf(format, args...)}
}

func lookupCluster(st *meta.State, name string) (*meta.Cluster, error) {
	c, ok := st.Clusters[name]
	if !ok {
		return nil, notFoundErr("cluster %q does not exist", name)
	}
	return c, nil
}

func lookupShard(st *meta.State, cluster, shard string) (*meta.Shard, error) {
	c, err := lookupCluster(st, cluster)
	if err != nil {
		return nil, err
	}
	sh, ok := c.Shards[shard]
	if !ok {
		return nil, notFoundErr("shard %q does not exist in cluster %q", shard, cluster)
	}
	return sh, nil
}

// respondCluster writes the cluster as the leader now has it.
func (s *Service) respondCluster(w http.ResponseWriter, r *http.Request, status int, name string) {
	var out api.Cluster
	err := s.store.View(r.Context(), meta.Stale, func(st *meta.State) error {
		c, err := lookupCluster(st, name)
		if err != nil {
			return err
		}
		out = toAPICluster(c)
		return nil
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, status, out)
}

// respondShard writes the shard as the leader now has it.
func (s *Service) respondShard(w http.ResponseWriter, r *http.Request, status int, cluster, shard string) {
	var out api.Shard
	err := s.store.View(r.Context(), meta.Stale, func(st *meta.State) error {
		sh, err := lookupShard(st, cluster, shard)
		if err != nil {
			return err
		}
		out = toAPIShard(cluster, sh)
		return nil
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, status, out)
}

func (s *Service) listClusters(w http.ResponseWriter, r *http.Request) {
	out := api.ClusterList{Clusters: []api.Cluster{}}
	err := s.view(r, func(st *meta.State) error {
		for _, name := range sortedKeys(st.Clusters) {
			out.Clusters = append(out.Clusters, toAPICluster(st.Clusters[name]))
		}
		return nil
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.decorateClusters(r, out.Clusters)
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) createCluster(w http.ResponseWriter, r *http.Request) {
	var req api.ClusterCreate
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	auto := true
	if req.AutoFailover != nil {
		auto = *req.AutoFailover
	}
	if err := meta.ValidateName("name", req.Name); err != nil {
		writeError(w, r, err)
		return
	}
	pw, err := s.sealPassword(r.Context(), "settings.pg_password", req.Name, req.PGPassword)
	if err != nil {
		writeError(w, r, err)
		return
	}
	cmd := &meta.CreateCluster{Name: req.Name, Settings: meta.ClusterSettings{
		PGUser: req.PGUser, PGPassword: pw, ReplicationUser: req.ReplicationUser, AutoFailover: auto,
	}}
	if err := s.store.Apply(r.Context(), cmd); err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/clusters/"+req.Name)
	s.respondCluster(w, r, http.StatusCreated, req.Name)
}

func (s *Service) getCluster(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "cluster")
	var out api.Cluster
	err := s.view(r, func(st *meta.State) error {
		c, err := lookupCluster(st, name)
		if err != nil {
			return err
		}
		out = toAPICluster(c)
		return nil
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	// Decorated in place: the slice's element, not out, gets the shards'
	// states and decisions.
	one := []api.Cluster{out}
	s.decorateClusters(r, one)
	writeJSON(w, http.StatusOK, one[0])
}

func (s *Service) patchCluster(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "cluster")
	var req api.ClusterPatch
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	if p := principalOf(r); (req.PGUser != nil || req.PGPassword != nil || req.ReplicationUser != nil) && !p.scope.Covers(auth.Admin) {
		writeProblem(w, r, api.Problem{Status: http.StatusForbidden,
			Detail: "token " + p.name + " has scope " + p.scope.String() + "; changing a cluster's credentials needs admin (operate may only pause and resume)"})
		return
	}
	if req.PGPassword != nil {
		pw, err := s.sealPassword(r.Context(), "pg_password", name, *req.PGPassword)
		if err != nil {
			writeError(w, r, err)
			return
		}
		req.PGPassword = &pw
	}
	cmd := &meta.UpdateCluster{Name: name, PGUser: req.PGUser, PGPassword: req.PGPassword,
		ReplicationUser: req.ReplicationUser, AutoFailover: req.AutoFailover}
	if err := s.store.Apply(r.Context(), cmd); err != nil {
		writeError(w, r, err)
		return
	}
	s.respondCluster(w, r, http.StatusOK, name)
}

func (s *Service) deleteCluster(w http.ResponseWriter, r *http.Request) {
	force, err := boolParam(r, "force")
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := s.store.Apply(r.Context(), &meta.DeleteCluster{Name: chi.URLParam(r, "cluster"), Force: force}); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// decorateClusters adds the leader's observations to the clusters'
// shards (their state, nodes' status, last decision, running operation),
// from one copy of the pipeline's state.
func (s *Service) decorateClusters(r *http.Request, clusters []api.Cluster) {
	if s.opts.HA == nil {
		return
	}
	var all []api.Shard
	for _, c := range clusters {
		all = append(all, c.Shards...)
	}
	s.opts.HA.DecorateAll(r.Context(), all)
	for i := range clusters {
		n := len(clusters[i].Shards)
		clusters[i].Shards, all = all[:n:n], all[n:]
	}
}

func (s *Service) listShards(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "cluster")
	out := api.ShardList{Shards: []api.Shard{}}
	err := s.view(r, func(st *meta.State) error {
		c, err := lookupCluster(st, name)
		if err != nil {
			return err
		}
		for _, sn := range sortedKeys(c.Shards) {
			out.Shards = append(out.Shards, toAPIShard(name, c.Shards[sn]))
		}
		return nil
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	if s.opts.HA != nil {
		s.opts.HA.DecorateAll(r.Context(), out.Shards)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) createShard(w http.ResponseWriter, r *http.Request) {
	cluster := chi.URLParam(r, "cluster")
	var req api.ShardCreate
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	if req.Provision {
		s.provisionShard(w, r, cluster, req)
		return
	}
	if len(req.Parameters) > 0 {
		writeError(w, r, &meta.Error{Kind: meta.KindInvalid, Field: "parameters", Msg: "apply only to provisioned shards"})
		return
	}
	cmd := &meta.CreateShard{Cluster: cluster, Name: req.Name}
	for _, n := range req.Nodes {
		cmd.Nodes = append(cmd.Nodes, fromAPINode(n))
	}
	if err := s.store.Apply(r.Context(), cmd); err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/clusters/"+cluster+"/shards/"+req.Name)
	s.respondShard(w, r, http.StatusCreated, cluster, req.Name)
}

func (s *Service) getShard(w http.ResponseWriter, r *http.Request) {
	cluster, shard := chi.URLParam(r, "cluster"), chi.URLParam(r, "shard")
	var out api.Shard
	err := s.view(r, func(st *meta.State) error {
		sh, err := lookupShard(st, cluster, shard)
		if err != nil {
			return err
		}
		out = toAPIShard(cluster, sh)
		return nil
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	if s.opts.HA != nil {
		s.opts.HA.Decorate(r.Context(), &out)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) deleteShard(w http.ResponseWriter, r *http.Request) {
	cmd := &meta.DeleteShard{Cluster: chi.URLParam(r, "cluster"), Name: chi.URLParam(r, "shard")}
	if err := s.store.Apply(r.Context(), cmd); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) addNode(w http.ResponseWriter, r *http.Request) {
	cluster, shard := chi.URLParam(r, "cluster"), chi.URLParam(r, "shard")
	var add api.NodeAdd
	if err := decodeBody(r, &add, false); err != nil {
		writeError(w, r, err)
		return
	}
	if add.Provision {
		if err := validParameters(add.Parameters); err != nil {
			writeError(w, r, err)
			return
		}
		if !s.haOrUnavailable(w, r) {
			return
		}
		n := add.Node
		op, err := s.opts.HA.AddNode(r.Context(), cluster, shard, action.AddNodeSpec{Parameters: add.Parameters,
			Node: action.ProvisionNode{Name: n.Name, Host: n.Host, Port: n.Port, Agent: n.Agent, DataDir: n.DataDir, Priority: n.Priority, Tags: n.Tags}})
		s.accepted(w, r, op, err)
		return
	}
	if len(add.Parameters) > 0 {
		writeError(w, r, &meta.Error{Kind: meta.KindInvalid, Field: "parameters", Msg: "apply only to provisioned nodes"})
		return
	}
	req := add.Node
	if err := s.store.Apply(r.Context(), &meta.AddNode{Cluster: cluster, Shard: shard, Node: fromAPINode(req)}); err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/clusters/"+cluster+"/shards/"+shard)
	s.respondShard(w, r, http.StatusCreated, cluster, shard)
}

func (s *Service) removeNode(w http.ResponseWriter, r *http.Request) {
	force, err := boolParam(r, "force")
	if err != nil {
		writeError(w, r, err)
		return
	}
	purge, err := boolParam(r, "purge")
	if err != nil {
		writeError(w, r, err)
		return
	}
	if s.opts.HA != nil && s.nodeHasAgent(r, chi.URLParam(r, "cluster"), chi.URLParam(r, "shard"), chi.URLParam(r, "node")) && !force {
		op, err := s.opts.HA.RemoveNode(r.Context(), chi.URLParam(r, "cluster"), chi.URLParam(r, "shard"), chi.URLParam(r, "node"), purge)
		s.accepted(w, r, op, err)
		return
	}
	if purge {
		writeError(w, r, &meta.Error{Kind: meta.KindInvalid, Field: "purge", Msg: "needs a node with an agent and data_dir (and no force)"})
		return
	}
	cmd := &meta.RemoveNode{Cluster: chi.URLParam(r, "cluster"), Shard: chi.URLParam(r, "shard"), Node: chi.URLParam(r, "node"), Force: force}
	if err := s.store.Apply(r.Context(), cmd); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// nodeHasAgent reports whether a registered node has an agent and data
// directory (its removal then stops it through the agent).
func (s *Service) nodeHasAgent(r *http.Request, cluster, shard, node string) bool {
	has := false
	_ = s.store.View(r.Context(), meta.Stale, func(st *meta.State) error {
		if sh, err := lookupShard(st, cluster, shard); err == nil {
			if n, ok := sh.Nodes[node]; ok {
				has = n.Agent != "" && n.DataDir != ""
			}
		}
		return nil
	})
	return has
}

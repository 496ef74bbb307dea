package service

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clustermgr/clustermgr/pkg/action"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/decision"
	"github.com/clustermgr/clustermgr/pkg/ha"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// HA is what the API needs of the HA pipeline.
type HA interface {
	Decorate(ctx context.Context, sh *api.Shard)
	DecorateAll(ctx context.Context, shards []api.Shard)
	Switchover(ctx context.Context, cluster, shard, to string) (meta.Operation, error)
	Failover(ctx context.Context, cluster, shard, to string, force, oldPrimaryGone bool) (meta.Operation, error)
	Rejoin(ctx context.Context, cluster, shard, node string) (meta.Operation, error)
	Primary(ctx context.Context, cluster, shard string) (api.Primary, error)
	ObservePeer(v api.PeerView)
	AsksReach(replica string) bool
	Watch(keys []string)
	PeerToken() string
	PeerKeys() map[string][]string
	Provision(ctx context.Context, cluster, shard string, spec action.ProvisionSpec) (meta.Operation, error)
	Cancel(ctx context.Context, id string) (meta.Operation, error)
	AddNode(ctx context.Context, cluster, shard string, spec action.AddNodeSpec) (meta.Operation, error)
	RemoveNode(ctx context.Context, cluster, shard, node string, purge bool) (meta.Operation, error)
	Backup(ctx context.Context, cluster, shard string) (meta.Operation, error)
	Restore(ctx context.Context, cluster, shard string, spec action.RestoreSpec) (meta.Operation, error)
	Reinit(ctx context.Context, cluster, shard, node string) (meta.Operation, error)
	CheckParameters(ctx context.Context, cluster, shard string, params map[string]*string) error
	Restart(ctx context.Context, cluster, shard string, req decision.RestartRequest) (meta.Operation, error)
	ScheduleSwitchover(ctx context.Context, cluster, shard, to string, at time.Time) (meta.Schedule, error)
	CancelSchedule(ctx context.Context, id string) (meta.Schedule, error)
}

func (s *Service) restart(w http.ResponseWriter, r *http.Request) {
	if !s.haOrUnavailable(w, r) {
		return
	}
	var req api.RestartRequest
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	switch {
	case req.Node != "" && (req.Rolling || req.OnlyPending):
		writeProblem(w, r, api.Problem{Status: http.StatusBadRequest, Field: "node", Detail: "node: a node is restarted alone; rolling and only_pending are for the whole shard"})
		return
	case req.Node == "" && !req.Rolling:
		writeProblem(w, r, api.Problem{Status: http.StatusBadRequest, Field: "rolling", Detail: `rolling: a shard restarts node by node: give {"rolling": true} or a node`})
		return
	}
	op, err := s.opts.HA.Restart(r.Context(), chi.URLParam(r, "cluster"), chi.URLParam(r, "shard"), decision.RestartRequest{Node: req.Node, Rolling: req.Rolling, OnlyPending: req.OnlyPending})
	s.accepted(w, r, op, err)
}

func (s *Service) reinit(w http.ResponseWriter, r *http.Request) {
	if !s.haOrUnavailable(w, r) {
		return
	}
	s.startOperation(w, r, s.opts.HA.Reinit, chi.URLParam(r, "node"))
}

func (s *Service) restore(w http.ResponseWriter, r *http.Request) {
	if !s.haOrUnavailable(w, r) {
		return
	}
	var req api.RestoreRequest
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	n := req.Node
	spec := action.RestoreSpec{Backup: req.Backup, TargetTime: req.TargetTime, AsNewShard: req.AsNewShard,
		Node: action.ProvisionNode{Name: n.Name, Host: n.Host, Port: n.Port, Agent: n.Agent, DataDir: n.DataDir}}
	op, err := s.opts.HA.Restore(r.Context(), chi.URLParam(r, "cluster"), chi.URLParam(r, "shard"), spec)
	s.accepted(w, r, op, err)
}

func (s *Service) takeBackup(w http.ResponseWriter, r *http.Request) {
	if !s.haOrUnavailable(w, r) {
		return
	}
	op, err := s.opts.HA.Backup(r.Context(), chi.URLParam(r, "cluster"), chi.URLParam(r, "shard"))
	s.accepted(w, r, op, err)
}

func (s *Service) listBackups(w http.ResponseWriter, r *http.Request) {
	cluster, shard := chi.URLParam(r, "cluster"), chi.URLParam(r, "shard")
	out := api.BackupList{Backups: []api.Backup{}}
	err := s.view(r, func(st *meta.State) error {
		if _, err := lookupShard(st, cluster, shard); err != nil {
			return err
		}
		for _, b := range st.Backups {
			if b.Cluster == cluster && b.Shard == shard {
				out.Backups = append(out.Backups, api.Backup{ID: b.ID, Node: b.Node, Agent: b.Agent, Path: b.Path, SizeBytes: b.SizeBytes,
					StartLSN: b.StartLSN, StopLSN: b.StopLSN, Timeline: b.Timeline, Seconds: b.Duration.Seconds(), Verified: b.Verified, CreatedAt: b.CreatedAt})
			}
		}
		return nil
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	sort.Slice(out.Backups, func(i, j int) bool { return out.Backups[i].CreatedAt.Before(out.Backups[j].CreatedAt) })
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) accepted(w http.ResponseWriter, r *http.Request, op meta.Operation, err error) {
	if err != nil {
		writeError(w, r, err)
		return
	}
	href := "/v1/operations/" + op.ID
	w.Header().Set("Location", href)
	writeJSON(w, http.StatusAccepted, api.OperationRef{ID: op.ID, Kind: op.Kind, Href: href})
}

// provisionShard starts creating a shard through the agents.
func (s *Service) provisionShard(w http.ResponseWriter, r *http.Request, cluster string, req api.ShardCreate) {
	if err := validParameters(req.Parameters); err != nil {
		writeError(w, r, err)
		return
	}
	if !s.haOrUnavailable(w, r) {
		return
	}
	spec := action.ProvisionSpec{Parameters: req.Parameters, Allow: req.Allow}
	for i, n := range req.Nodes {
		if n.Role != "" && (i == 0) != (n.Role == string(meta.RolePrimary)) {
			writeError(w, r, &meta.Error{Kind: meta.KindInvalid, Field: sprintf("nodes[%d].role", i), Msg: "the first node of a provisioned shard is its primary and the others standbys; leave role out"})
			return
		}
		spec.Nodes = append(spec.Nodes, action.ProvisionNode{Name: n.Name, Host: n.Host, Port: n.Port, Agent: n.Agent, DataDir: n.DataDir, Priority: n.Priority, Tags: n.Tags})
	}
	op, err := s.opts.HA.Provision(r.Context(), cluster, req.Name, spec)
	s.accepted(w, r, op, err)
}

func (s *Service) cancelOperation(w http.ResponseWriter, r *http.Request) {
	if !s.haOrUnavailable(w, r) {
		return
	}
	op, err := s.opts.HA.Cancel(r.Context(), chi.URLParam(r, "id"))
	s.accepted(w, r, op, err)
}

func (s *Service) haOrUnavailable(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.HA == nil {
		writeProblem(w, r, api.Problem{Status: http.StatusServiceUnavailable, Detail: "the HA pipeline is not running on this replica"})
		return false
	}
	return true
}

func (s *Service) patchShard(w http.ResponseWriter, r *http.Request) {
	cluster, shard := chi.URLParam(r, "cluster"), chi.URLParam(r, "shard")
	var req api.ShardPatch
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	if req.BackupSchedule != nil {
		if err := meta.ValidateSchedule("backup_schedule", *req.BackupSchedule, time.Now(), s.opts.BackupMinInterval); err != nil {
			writeError(w, r, err)
			return
		}
	}
	if len(req.Parameters) > 0 && s.opts.HA != nil {
		// PostgreSQL checks the values before they reach Raft (on a
		// node's host, through its agent, when the shard has one).
		if err := s.opts.HA.CheckParameters(r.Context(), cluster, shard, req.Parameters); err != nil {
			writeError(w, r, err)
			return
		}
	}
	cmd := &meta.UpdateShard{Cluster: cluster, Shard: shard, Synchronous: req.Synchronous, MaxLagOnFailover: req.MaxLagOnFailover,
		BackupSchedule: req.BackupSchedule, BackupRetention: req.BackupRetention, Parameters: req.Parameters}
	if err := s.store.Apply(r.Context(), cmd); err != nil {
		writeError(w, r, err)
		return
	}
	s.respondShard(w, r, http.StatusOK, cluster, shard)
}

func (s *Service) startOperation(w http.ResponseWriter, r *http.Request, start func(ctx context.Context, cluster, shard, arg string) (meta.Operation, error), arg string) {
	op, err := start(r.Context(), chi.URLParam(r, "cluster"), chi.URLParam(r, "shard"), arg)
	s.accepted(w, r, op, err)
}

func (s *Service) switchover(w http.ResponseWriter, r *http.Request) {
	if !s.haOrUnavailable(w, r) {
		return
	}
	var req api.SwitchoverRequest
	if err := decodeBody(r, &req, true); err != nil {
		writeError(w, r, err)
		return
	}
	if req.Force || req.OldPrimaryGone {
		writeProblem(w, r, api.Problem{Status: http.StatusBadRequest, Field: "force", Detail: "force and old_primary_gone are for a manual failover, not a switchover"})
		return
	}
	if !req.At.IsZero() {
		sc, err := s.opts.HA.ScheduleSwitchover(r.Context(), chi.URLParam(r, "cluster"), chi.URLParam(r, "shard"), req.To, req.At)
		if err != nil {
			writeError(w, r, err)
			return
		}
		w.Header().Set("Location", "/v1/schedules/"+sc.ID)
		writeJSON(w, http.StatusCreated, toAPISchedule(&sc))
		return
	}
	s.startOperation(w, r, s.opts.HA.Switchover, req.To)
}

func (s *Service) failover(w http.ResponseWriter, r *http.Request) {
	if !s.haOrUnavailable(w, r) {
		return
	}
	var req api.SwitchoverRequest
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	if !req.At.IsZero() {
		writeProblem(w, r, api.Problem{Status: http.StatusBadRequest, Field: "at", Detail: "at: a failover is not scheduled; schedule a switchover"})
		return
	}
	op, err := s.opts.HA.Failover(r.Context(), chi.URLParam(r, "cluster"), chi.URLParam(r, "shard"), req.To, req.Force, req.OldPrimaryGone)
	s.accepted(w, r, op, err)
}

func (s *Service) rejoin(w http.ResponseWriter, r *http.Request) {
	if !s.haOrUnavailable(w, r) {
		return
	}
	s.startOperation(w, r, s.opts.HA.Rejoin, chi.URLParam(r, "node"))
}

func (s *Service) primary(w http.ResponseWriter, r *http.Request) {
	if !s.haOrUnavailable(w, r) {
		return
	}
	p, err := s.opts.HA.Primary(r.Context(), chi.URLParam(r, "cluster"), chi.URLParam(r, "shard"))
	if errors.Is(err, ha.ErrNoPrimary) {
		writeProblem(w, r, api.Problem{Status: http.StatusServiceUnavailable, Detail: err.Error()})
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// observePeer takes a follower's view of the nodes (internal endpoint,
// authenticated by the peer token). The answer says whether this
// replica's asks for the probes it needs reach the follower
// (api.WatchHeader).
func (s *Service) observePeer(w http.ResponseWriter, r *http.Request) {
	if !s.peerOnly(w, r) {
		return
	}
	var v api.PeerView
	// A view names as many nodes as the fleet has.
	if err := decodeBounded(r, &v, false, bounds{list: maxViewKeys}); err != nil {
		writeError(w, r, err)
		return
	}
	s.opts.HA.ObservePeer(v)
	if s.opts.HA.AsksReach(v.Replica) {
		w.Header().Set(api.WatchHeader, "1")
	}
	w.WriteHeader(http.StatusNoContent)
}

// peerWatch takes the leader's ask to probe nodes now and for a few
// rounds (internal endpoint, authenticated by the peer token).
func (s *Service) peerWatch(w http.ResponseWriter, r *http.Request) {
	if !s.peerOnly(w, r) {
		return
	}
	var v api.PeerWatch
	if err := decodeBounded(r, &v, false, bounds{list: maxViewKeys}); err != nil {
		writeError(w, r, err)
		return
	}
	s.opts.HA.Watch(v.Keys)
	w.WriteHeader(http.StatusNoContent)
}

// peerOnly answers the request unless it carries the group's peer
// credential and this replica runs the HA pipeline.
func (s *Service) peerOnly(w http.ResponseWriter, r *http.Request) bool {
	got, ok := bearer(r)
	want := s.PeerCredential()
	if !ok || want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		s.rejectAuth(w, r, "the group's peer credential is required")
		return false
	}
	if s.opts.HA == nil {
		writeProblem(w, r, api.Problem{Status: http.StatusNotFound, Detail: "internal views are not enabled on this replica"})
		return false
	}
	return true
}

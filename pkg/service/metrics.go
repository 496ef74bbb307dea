package service

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/metrics"
)

// Metrics is this replica's metrics (the replica feeds the store's and
// the pipeline's observations to it).
func (s *Service) Metrics() *metrics.Metrics { return s.metrics }

// serveMetrics answers GET /metrics from this replica's own view.
func (s *Service) serveMetrics(w http.ResponseWriter, r *http.Request) {
	s.metrics.Handler().ServeHTTP(w, r)
}

// instrument counts every request by its route pattern (never its path:
// the label's values are the router's routes), method and status, and
// times it.
func (s *Service) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route := ""
		if rc := chi.RouteContext(r.Context()); rc != nil {
			route = rc.RoutePattern()
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.metrics.ObserveRequest(route, r.Method, rec.status, time.Since(start))
	})
}

// MetricsSnapshot is the fleet as this replica sees it: its Raft state,
// every shard decorated with this replica's views (as GET .../shards/{s}
// shows it), and the operations the state holds.
func (s *Service) MetricsSnapshot() metrics.Snapshot {
	var out metrics.Snapshot
	if info, err := s.store.Info(); err == nil {
		out.Raft = metrics.Raft{State: info.State, Term: info.Term, LastIndex: info.LastIndex, Commit: info.CommitIndex,
			Applied: info.AppliedIndex, LeaderKnown: info.LeaderID != ""}
		for _, m := range info.Members {
			if m.Voter {
				out.Raft.Voters++
			}
		}
	}
	var shards []api.Shard
	ops := map[[2]string]int{}
	lastBackup := map[[2]string]time.Time{}
	interval := map[[2]string]time.Duration{}
	now := time.Now()
	_ = s.store.View(context.Background(), meta.Stale, func(st *meta.State) error {
		every := map[string]time.Duration{} // schedules repeat across shards
		for _, cn := range sortedKeys(st.Clusters) {
			c := st.Clusters[cn]
			for _, sn := range sortedKeys(c.Shards) {
				sh := c.Shards[sn]
				shards = append(shards, toAPIShard(cn, sh))
				if expr := sh.Settings.BackupSchedule; expr != "" {
					if _, ok := every[expr]; !ok {
						every[expr] = meta.ScheduleInterval(expr, now)
					}
					interval[[2]string{cn, sn}] = every[expr]
				}
			}
		}
		for _, b := range st.Backups {
			k := [2]string{b.Cluster, b.Shard}
			if b.Verified && b.CreatedAt.After(lastBackup[k]) {
				lastBackup[k] = b.CreatedAt
			}
		}
		for _, op := range st.Operations {
			ops[[2]string{op.Kind, op.State}]++
		}
		return nil
	})
	if s.opts.HA != nil {
		s.opts.HA.DecorateAll(context.Background(), shards)
	}
	for i := range shards {
		sh := &shards[i]
		k := [2]string{sh.Cluster, sh.Name}
		ms := metrics.Shard{Cluster: sh.Cluster, Name: sh.Name, State: sh.State, Epoch: sh.Epoch, SyncStandbys: len(sh.SyncSet),
			Synchronous: sh.Settings.Synchronous == "on" || sh.Settings.Synchronous == "strict", LastBackup: lastBackup[k], BackupInterval: interval[k]}
		for _, n := range sh.Nodes {
			mn := metrics.Node{Name: n.Name, Role: n.Role, Health: "unknown"}
			if st := n.Status; st != nil {
				mn.Health, mn.Timeline, mn.LagBytes, mn.LagSeconds, mn.Streaming = st.Health, st.Timeline, st.LagBytes, st.LagSeconds, st.StreamingFrom != ""
			}
			ms.Nodes = append(ms.Nodes, mn)
		}
		out.Shards = append(out.Shards, ms)
	}
	for k, n := range ops {
		out.Operations = append(out.Operations, metrics.Operation{Kind: k[0], State: k[1], Count: n})
	}
	sort.Slice(out.Operations, func(i, j int) bool {
		a, b := out.Operations[i], out.Operations[j]
		return a.Kind < b.Kind || a.Kind == b.Kind && a.State < b.State
	})
	return out
}

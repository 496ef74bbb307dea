package service

import (
	"net/http"
	"sort"

	"github.com/go-chi/chi/v5"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

func toAPISchedule(sc *meta.Schedule) api.Schedule {
	return api.Schedule{ID: sc.ID, Cluster: sc.Cluster, Shard: sc.Shard, To: sc.To, At: sc.At, State: sc.State, Reason: sc.Reason,
		Operation: sc.Operation, CreatedAt: sc.CreatedAt, UpdatedAt: sc.UpdatedAt}
}

// listSchedules answers the scheduled switchovers, soonest first
// (?cluster= keeps one cluster's).
func (s *Service) listSchedules(w http.ResponseWriter, r *http.Request) {
	cluster := r.URL.Query().Get("cluster")
	out := api.ScheduleList{Schedules: []api.Schedule{}}
	if err := s.view(r, func(st *meta.State) error {
		for _, sc := range st.Schedules {
			if cluster == "" || sc.Cluster == cluster {
				out.Schedules = append(out.Schedules, toAPISchedule(sc))
			}
		}
		return nil
	}); err != nil {
		writeError(w, r, err)
		return
	}
	sort.Slice(out.Schedules, func(i, j int) bool {
		a, b := out.Schedules[i], out.Schedules[j]
		return a.At.Before(b.At) || a.At.Equal(b.At) && a.ID < b.ID
	})
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) getSchedule(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	var out api.Schedule
	if err := s.view(r, func(st *meta.State) error {
		sc, ok := st.Schedules[id]
		if !ok {
			return notFoundErr("schedule %q does not exist", id)
		}
		out = toAPISchedule(sc)
		return nil
	}); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// cancelSchedule cancels a scheduled switchover that has not started.
func (s *Service) cancelSchedule(w http.ResponseWriter, r *http.Request) {
	if !s.haOrUnavailable(w, r) {
		return
	}
	sc, err := s.opts.HA.CancelSchedule(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPISchedule(&sc))
}

package service

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// boolParam parses an optional boolean query parameter.
func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, invalidField(name, strconv.Quote(v)+" is not true or false")
	}
	return b, nil
}

// eventFilter selects events: of one cluster, after an event id or at or
// after a time, at most limit of them.
type eventFilter struct {
	cluster string
	sinceID uint64
	since   time.Time
	limit   int
}

const (
	defaultEventLimit = 100
	maxEventLimit     = meta.MaxEvents
)

func parseEventFilter(r *http.Request) (eventFilter, error) {
	q := r.URL.Query()
	f := eventFilter{cluster: q.Get("cluster"), limit: defaultEventLimit}
	if v := q.Get("since"); v != "" {
		if id, err := strconv.ParseUint(v, 10, 64); err == nil {
			f.sinceID = id
		} else if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			f.since = t
		} else {
			return f, invalidField("since", strconv.Quote(v)+" is neither an event id nor an RFC 3339 time")
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxEventLimit {
			return f, invalidField("limit", sprintf("%q is out of range 1-%d", v, maxEventLimit))
		}
		f.limit = n
	}
	return f, nil
}

func (f eventFilter) match(e *meta.Event) bool {
	return (f.cluster == "" || e.Cluster == f.cluster) && e.ID > f.sinceID && !e.At.Before(f.since)
}

func (s *Service) listEvents(w http.ResponseWriter, r *http.Request) {
	f, err := parseEventFilter(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := api.EventList{Events: []api.Event{}}
	err = s.view(r, func(st *meta.State) error {
		// With a since, the first limit events after it (to page forward);
		// without, the latest limit events.
		var picked []api.Event
		if f.sinceID > 0 || !f.since.IsZero() {
			for i := range st.Events {
				if len(picked) == f.limit {
					break
				}
				if f.match(&st.Events[i]) {
					picked = append(picked, api.Event(st.Events[i]))
				}
			}
		} else {
			for i := len(st.Events) - 1; i >= 0 && len(picked) < f.limit; i-- {
				if f.match(&st.Events[i]) {
					picked = append(picked, api.Event(st.Events[i]))
				}
			}
			sort.Slice(picked, func(i, j int) bool { return picked[i].ID < picked[j].ID })
		}
		out.Events = append(out.Events, picked...)
		return nil
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) listOperations(w http.ResponseWriter, r *http.Request) {
	out := api.OperationList{Operations: []api.Operation{}}
	err := s.view(r, func(st *meta.State) error {
		for _, id := range sortedKeys(st.Operations) {
			out.Operations = append(out.Operations, toAPIOperation(st.Operations[id]))
		}
		return nil
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) getOperation(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	var out api.Operation
	err := s.view(r, func(st *meta.State) error {
		o, ok := st.Operations[id]
		if !ok {
			return notFoundErr("operation %q does not exist", id)
		}
		out = toAPIOperation(o)
		return nil
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

package service

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"slices"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/clustermgr/clustermgr/pkg/api"
)

// Profiles are the runtime profiles GET /v1/manager/pprof/{profile}
// serves: "profile" is CPU over ?seconds= (default 30), the others as
// net/http/pprof serves them (?debug=1 for text; block and mutex stay
// empty, as the process does not sample them).
func Profiles() []string {
	return []string{"profile", "heap", "allocs", "goroutine", "block", "mutex", "threadcreate"}
}

// maxProfileSeconds bounds a CPU profile, so a request cannot hold the
// profiler (one at a time per process) for long.
const maxProfileSeconds = 60

// profile serves a runtime profile of this replica (admin only: a
// goroutine dump shows addresses and a heap profile what is in memory).
func (s *Service) profile(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "profile")
	if !slices.Contains(Profiles(), name) {
		writeProblem(w, r, api.Problem{Status: http.StatusNotFound, Detail: fmt.Sprintf("no profile %q: one of %v", name, Profiles())})
		return
	}
	if v := r.URL.Query().Get("seconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxProfileSeconds {
			writeError(w, r, invalidField("seconds", fmt.Sprintf("must be a whole number of seconds from 1 to %d", maxProfileSeconds)))
			return
		}
	}
	if name == "profile" {
		pprof.Profile(w, r)
		return
	}
	pprof.Handler(name).ServeHTTP(w, r)
}

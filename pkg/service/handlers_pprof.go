package service

import (
	"fmt"
	"net/http"
	"runtime/pprof"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clustermgr/clustermgr/pkg/api"
)

// profiles are the runtime profiles GET /v1/manager/pprof/{profile}
// serves: "profile" is CPU over ?seconds= (default 30), the others as
// runtime/pprof writes them (?debug=1 or 2 for text; block and mutex stay
// empty, as the process does not sample them).
func profiles() []string {
	return []string{"profile", "heap", "allocs", "goroutine", "block", "mutex", "threadcreate"}
}

// maxProfileSeconds bounds a CPU profile, so a request cannot hold the
// profiler (one at a time per process) for long.
const maxProfileSeconds = 60

// profile serves a runtime profile of this replica (admin only: a
// goroutine dump shows addresses and a heap profile what is in memory).
// It calls runtime/pprof itself rather than net/http/pprof, whose import
// would serve /debug/pprof/ on the default mux and whose errors are not
// problems.
func (s *Service) profile(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "profile")
	if !slices.Contains(profiles(), name) {
		writeProblem(w, r, api.Problem{Status: http.StatusNotFound, Detail: fmt.Sprintf("no profile %q: one of %v", name, profiles())})
		return
	}
	q := r.URL.Query()
	seconds, debug := 30, 0
	if v := q.Get("seconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxProfileSeconds || name != "profile" {
			writeError(w, r, invalidField("seconds", fmt.Sprintf("is for profile only: a whole number of seconds from 1 to %d", maxProfileSeconds)))
			return
		}
		seconds = n
	}
	if v := q.Get("debug"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 2 || name == "profile" {
			writeError(w, r, invalidField("debug", "is 0, 1 or 2 (text), and not for profile"))
			return
		}
		debug = n
	}
	if name != "profile" {
		if debug == 0 {
			w.Header().Set("Content-Type", "application/octet-stream")
		} else {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		_ = pprof.Lookup(name).WriteTo(w, debug)
		return
	}
	if !s.cpuProfile.TryLock() {
		writeProblem(w, r, api.Problem{Status: http.StatusConflict, Detail: "a CPU profile of this replica is being taken; try again when it ends"})
		return
	}
	defer s.cpuProfile.Unlock()
	// The answer is written as the profile ends, after the server's
	// write timeout may have passed.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Duration(seconds)*time.Second + 30*time.Second))
	w.Header().Set("Content-Type", "application/octet-stream")
	if err := pprof.StartCPUProfile(w); err != nil {
		writeProblem(w, r, api.Problem{Status: http.StatusConflict, Detail: "the CPU profiler of this replica is in use: " + err.Error()})
		return
	}
	t := time.NewTimer(time.Duration(seconds) * time.Second)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
	pprof.StopCPUProfile()
}

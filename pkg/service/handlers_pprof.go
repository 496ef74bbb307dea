package service

import (
	"fmt"
	"io"
	"net/http"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/clustermgr/clustermgr/pkg/api"
)

// profiles are the runtime profiles GET /v1/manager/pprof/{profile}
// serves: "profile" is CPU over ?seconds= (default 30), "trace" an
// execution trace for go tool trace over ?seconds= (default 1), the
// others as runtime/pprof writes them (?debug=1 or 2 for text; block and
// mutex stay empty, as the process does not sample them).
func profiles() []string {
	return []string{"profile", "trace", "heap", "allocs", "goroutine", "block", "mutex", "threadcreate"}
}

// timed reports whether profile name is taken over a span of seconds.
func timed(name string) bool { return name == "profile" || name == "trace" }

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
	if name == "trace" {
		seconds = 1
	}
	if v := q.Get("seconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxProfileSeconds || !timed(name) {
			writeError(w, r, invalidField("seconds", fmt.Sprintf("is for profile and trace only: a whole number of seconds from 1 to %d", maxProfileSeconds)))
			return
		}
		seconds = n
	}
	if v := q.Get("debug"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 2 || timed(name) {
			writeError(w, r, invalidField("debug", "is 0, 1 or 2 (text), and not for profile or trace"))
			return
		}
		debug = n
	}
	if !timed(name) {
		if debug == 0 {
			w.Header().Set("Content-Type", "application/octet-stream")
		} else {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		_ = pprof.Lookup(name).WriteTo(w, debug)
		return
	}
	if name == "trace" {
		s.timedProfile(w, r, seconds, trace.Start, trace.Stop)
		return
	}
	s.timedProfile(w, r, seconds, pprof.StartCPUProfile, pprof.StopCPUProfile)
}

// timedProfile writes what start begins to w for seconds (or until the
// request ends), one at a time: another request while one runs, or while
// the process's own profiler or tracer is in use, gets 409.
func (s *Service) timedProfile(w http.ResponseWriter, r *http.Request, seconds int, start func(io.Writer) error, stop func()) {
	if !s.profiling.TryLock() {
		writeProblem(w, r, api.Problem{Status: http.StatusConflict, Detail: "a CPU profile or an execution trace of this replica is being taken (one at a time); try again when it ends"})
		return
	}
	defer s.profiling.Unlock()
	// The answer is written as the profile ends, after the server's
	// write timeout may have passed.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Duration(seconds)*time.Second + 30*time.Second))
	w.Header().Set("Content-Type", "application/octet-stream")
	if err := start(w); err != nil {
		writeProblem(w, r, api.Problem{Status: http.StatusConflict, Detail: "the profiler or tracer of this replica is in use: " + err.Error()})
		return
	}
	t := time.NewTimer(time.Duration(seconds) * time.Second)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
	stop()
}

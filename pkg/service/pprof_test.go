package service_test

import (
	"bytes"
	"io"
	"net/http"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"testing"
)

// TestManager_Profiles: an admin reads a replica's runtime profiles for
// go tool pprof, and an execution trace for go tool trace; an unknown profile is 404 and a CPU profile longer than
// a minute 400, both problems naming what is wrong.
func TestManager_Profiles(t *testing.T) {
	u := startSingle(t).URL
	r := do(t, "GET", u+"/v1/manager/pprof/heap", nil)
	mustStatus(t, r, http.StatusOK)
	if !bytes.HasPrefix(r.body, []byte{0x1f, 0x8b}) { // a gzipped profile.proto
		t.Fatalf("heap profile is not gzip: %.40q", r.body)
	}
	r = do(t, "GET", u+"/v1/manager/pprof/goroutine?debug=1", nil)
	mustStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), "goroutine profile:") {
		t.Fatalf("goroutine text: %.200s", r.body)
	}
	r = do(t, "GET", u+"/v1/manager/pprof/profile?seconds=1", nil)
	mustStatus(t, r, http.StatusOK)
	if !bytes.HasPrefix(r.body, []byte{0x1f, 0x8b}) {
		t.Fatalf("CPU profile is not gzip: %.40q", r.body)
	}

	// An execution trace, for go tool trace: its file starts with the
	// format's header.
	r = do(t, "GET", u+"/v1/manager/pprof/trace?seconds=1", nil)
	mustStatus(t, r, http.StatusOK)
	if !bytes.HasPrefix(r.body, []byte("go 1.")) {
		t.Fatalf("trace: %.40q", r.body)
	}

	r = do(t, "GET", u+"/v1/manager/pprof/cmdline", nil)
	mustStatus(t, r, http.StatusNotFound)
	if p := r.problem(t); !strings.Contains(p.Detail, `"cmdline"`) {
		t.Fatalf("unknown profile: %+v", p)
	}
	for _, q := range []string{"profile?seconds=61", "trace?seconds=0", "heap?seconds=5", "goroutine?debug=3", "profile?debug=1", "trace?debug=1"} {
		r = do(t, "GET", u+"/v1/manager/pprof/"+q, nil)
		mustStatus(t, r, http.StatusBadRequest)
		field, _, _ := strings.Cut(strings.SplitN(q, "?", 2)[1], "=")
		if p := r.problem(t); !strings.Contains(p.Detail, field) {
			t.Fatalf("%s: %+v", q, p)
		}
	}

	// One CPU profile at a time: while the process's profiler is in use
	// (here by the test, the replica runs in it), a request is refused.
	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		t.Fatal(err)
	}
	r = do(t, "GET", u+"/v1/manager/pprof/profile?seconds=1", nil)
	pprof.StopCPUProfile()
	mustStatus(t, r, http.StatusConflict)
	r.problem(t)
	// And one trace.
	if err := trace.Start(io.Discard); err != nil {
		t.Fatal(err)
	}
	r = do(t, "GET", u+"/v1/manager/pprof/trace?seconds=1", nil)
	trace.Stop()
	mustStatus(t, r, http.StatusConflict)
	r.problem(t)
}

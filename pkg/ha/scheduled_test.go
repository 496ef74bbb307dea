package ha_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/ha"
)

// schedule returns a scheduled switchover as the API shows it.
func (e *env) schedule(id string) api.Schedule {
	var sc api.Schedule
	e.do("GET", "/v1/schedules/"+id, nil, &sc)
	return sc
}

// TestScheduledSwitchover: a switchover scheduled a few seconds ahead is
// listed, survives the manager leader's death, and runs at its time; one
// scheduled while a standby is down is refused at its time with the
// reason; one cancelled never runs.
func TestScheduledSwitchover(t *testing.T) {
	if testing.Short() {
		t.Skip("real PostgreSQL")
	}
	e := newEnv(t, ha.Config{})
	e.waitStandbyOf("pg2", "pg1", 30*time.Second)
	if status, out := e.do("POST", "/v1/clusters/app/shards/s1/switchover", map[string]any{"to": "pg2", "at": "2001-01-01T00:00:00Z"}, nil); status != http.StatusBadRequest || !strings.Contains(string(out), "not in the future") {
		t.Fatalf("a switchover scheduled in the past: %d %s", status, out)
	}
	// Cancelled: never runs.
	var later api.Schedule
	e.mustDo("POST", "/v1/clusters/app/shards/s1/switchover", map[string]any{"at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, http.StatusCreated, &later)
	e.mustDo("DELETE", "/v1/schedules/"+later.ID, nil, http.StatusOK, nil)
	if status, _ := e.do("DELETE", "/v1/schedules/"+later.ID, nil, nil); status != http.StatusConflict {
		t.Fatalf("cancelling twice: %d, want 409", status)
	}

	at := time.Now().Add(4 * time.Second).UTC().Truncate(time.Second)
	var sc api.Schedule
	e.mustDo("POST", "/v1/clusters/app/shards/s1/switchover", map[string]any{"to": "pg2", "at": at.Format(time.RFC3339)}, http.StatusCreated, &sc)
	if sc.State != "scheduled" || !sc.At.Equal(at) || sc.To != "pg2" {
		t.Fatalf("schedule %+v", sc)
	}
	var list api.ScheduleList
	e.mustDo("GET", "/v1/schedules?cluster=app", nil, http.StatusOK, &list)
	if len(list.Schedules) != 2 || list.Schedules[0].ID != sc.ID || list.Schedules[1].State != "cancelled" {
		t.Fatalf("schedules %+v", list.Schedules)
	}
	// The leader that recorded it dies; the next one runs it.
	_ = e.leader().Kill()
	e.waitFor(60*time.Second, "the scheduled switchover started", func() bool { return e.schedule(sc.ID).State == "started" })
	started := e.schedule(sc.ID)
	op := e.waitOperation(started.Operation, 60*time.Second)
	if op.State != "succeeded" || op.Target != "pg2" || op.CreatedAt.Before(at) {
		t.Fatalf("operation %+v (scheduled at %s)", op, at)
	}
	if p := e.primary(); p != "pg2" {
		t.Fatalf("primary %s after the scheduled switchover, want pg2", p)
	}
	if e.schedule(later.ID).State != "cancelled" {
		t.Fatal("the cancelled schedule ran")
	}

	// A standby down at the scheduled time (in maintenance, so that the
	// manager leaves it down): refused, and why.
	e.waitShardState("healthy", 60*time.Second)
	e.mustDo("POST", "/v1/clusters/app/shards/s1/nodes/pg3/maintenance", nil, http.StatusOK, nil)
	e.nodes["pg3"].Crash()
	e.waitFor(10*time.Second, "pg3 seen down", func() bool { return e.nodeHealth("pg3") == "down" })
	var bad api.Schedule
	e.mustDo("POST", "/v1/clusters/app/shards/s1/switchover", map[string]any{"at": time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)}, http.StatusCreated, &bad)
	e.waitFor(30*time.Second, "the schedule refused", func() bool { return e.schedule(bad.ID).State != "scheduled" })
	if got := e.schedule(bad.ID); got.State != "refused" || !strings.Contains(got.Reason, "pg3 down") {
		t.Fatalf("schedule with a standby down: %+v", got)
	}
	if len(e.events("scheduled switchover "+bad.ID+" refused")) != 1 {
		t.Fatal("no event for the refusal")
	}
}

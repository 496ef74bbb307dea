package ha_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/ha"
)

func reportMedian(b *testing.B, gaps []time.Duration) {
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	b.ReportMetric(float64(gaps[len(gaps)/2].Milliseconds()), "median-ms")
	b.ReportMetric(float64(gaps[0].Milliseconds()), "min-ms")
	b.ReportMetric(float64(gaps[len(gaps)-1].Milliseconds()), "max-ms")
}

// BenchmarkFailoverWriteGap measures an unplanned failover with the
// default HA settings (probe every 500 ms, 1 s timeout, threshold 3): a
// write loop follows GET .../primary; the primary's postmaster gets
// SIGKILL; the gap is from the kill to the first write committed on the
// new primary. Each iteration builds a fresh shard and manager group.
func BenchmarkFailoverWriteGap(b *testing.B) {
	var gaps []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newEnv(b, ha.Config{ProbeInterval: 500 * time.Millisecond, ProbeTimeout: time.Second, FailureThreshold: 3})
		e.nodes["pg1"].Exec("CREATE TABLE t (id bigint primary key)")
		e.waitStandbyOf("pg2", "pg1", 10*time.Second)
		e.waitStandbyOf("pg3", "pg1", 10*time.Second)
		w, stop := e.startWriter(2 * time.Millisecond)
		e.waitFor(10*time.Second, "writes", func() bool { return len(w.Acked()) > 50 })
		b.StartTimer()
		killedAt := time.Now()
		e.nodes["pg1"].Crash()
		old := e.nodes["pg1"].DSN()
		firstNew := func() (time.Duration, bool) {
			for _, a := range w.Acks() {
				if a.At.After(killedAt) && a.Target != old {
					return a.At.Sub(killedAt), true
				}
			}
			return 0, false
		}
		e.waitFor(60*time.Second, "a write on the new primary", func() bool { _, ok := firstNew(); return ok })
		b.StopTimer()
		stop()
		gap, _ := firstNew()
		gaps = append(gaps, gap)
	}
	reportMedian(b, gaps)
}

// BenchmarkSwitchoverWriteGap measures planned switchovers on one shard: a
// write loop follows GET .../primary; the gap is the longest pause between
// two acknowledged writes while the switchover runs.
func BenchmarkSwitchoverWriteGap(b *testing.B) {
	e := newEnv(b, ha.Config{})
	e.nodes["pg1"].Exec("CREATE TABLE t (id bigint primary key)")
	e.waitShardState("healthy", 30*time.Second)
	w, stop := e.startWriter(2 * time.Millisecond)
	defer stop()
	var gaps []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e.waitShardState("healthy", 60*time.Second)
		e.waitFor(10*time.Second, "writes", func() bool { return len(w.Acked()) > 0 })
		b.StartTimer()
		start := time.Now()
		ref := e.switchover("")
		op := e.waitOperation(ref.ID, 60*time.Second)
		if op.State != "succeeded" {
			b.Fatalf("switchover %+v", op)
		}
		from := op.Target
		newDSN := e.nodes[from].DSN()
		e.waitFor(10*time.Second, "a write on the new primary", func() bool {
			acks := w.Acks()
			return len(acks) > 0 && acks[len(acks)-1].Target == newDSN
		})
		b.StopTimer()
		var prev time.Time
		var worst time.Duration
		for _, a := range w.Acks() {
			if a.At.Before(start) {
				prev = a.At
				continue
			}
			if !prev.IsZero() && a.At.Sub(prev) > worst {
				worst = a.At.Sub(prev)
			}
			prev = a.At
		}
		gaps = append(gaps, worst)
	}
	reportMedian(b, gaps)
}

// BenchmarkProvisionShard measures provisioning a shard of a primary and
// two standbys through the API and one agent on loopback: from the POST to
// the job's success (initdb, start, slots, two pg_basebackups, starts, all
// streaming, registered).
func BenchmarkProvisionShard(b *testing.B) {
	e := newGroup(b, ha.Config{})
	e.mustDo("POST", "/v1/clusters", map[string]any{"name": "app", "pg_user": "postgres"}, http.StatusCreated, nil)
	var took []time.Duration
	for i := 0; i < b.N; i++ {
		nodes := e.provisionNodes(fmt.Sprintf("b%d-pg1", i), fmt.Sprintf("b%d-pg2", i), fmt.Sprintf("b%d-pg3", i))
		var ref api.OperationRef
		start := time.Now()
		e.mustDo("POST", "/v1/clusters/app/shards", map[string]any{"name": fmt.Sprintf("s%d", i), "provision": true, "nodes": nodes}, http.StatusAccepted, &ref)
		op := e.waitOperation(ref.ID, 3*time.Minute)
		took = append(took, time.Since(start))
		if op.State != "succeeded" {
			b.Fatalf("provisioning %+v", op)
		}
		// Stop this shard's servers so that each provisioning runs on an
		// equally loaded machine.
		b.StopTimer()
		for _, n := range nodes {
			_ = e.pg.Runner.Stop(context.Background(), n["data_dir"].(string), "immediate")
		}
		b.StartTimer()
	}
	reportMedian(b, took)
}

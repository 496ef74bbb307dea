package ha_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
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
	e.mustDo("POST", "/v1/clusters", map[string]any{"name": "app", "pg_user": "postgres", "pg_password": provisionPassword}, http.StatusCreated, nil)
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

// BenchmarkBackupThroughput compares a backup through the API (agent,
// pg_basebackup, pg_verifybackup, recorded in Raft) with a plain
// pg_basebackup of the same standby in the same run, alternating the two,
// on about 150 MB of data. It reports the median throughput ratio (ours /
// plain) and both medians in MB/s.
func BenchmarkBackupThroughput(b *testing.B) {
	e := newGroup(b, ha.Config{})
	e.mustDo("POST", "/v1/clusters", map[string]any{"name": "app", "pg_user": "postgres", "pg_password": provisionPassword}, http.StatusCreated, nil)
	nodes := e.provisionNodes("pg1", "pg2")
	var ref api.OperationRef
	e.mustDo("POST", "/v1/clusters/app/shards", map[string]any{"name": "s1", "provision": true, "nodes": nodes}, http.StatusAccepted, &ref)
	if op := e.waitOperation(ref.ID, 3*time.Minute); op.State != "succeeded" {
		b.Fatalf("provisioning %+v", op)
	}
	e.adopt(nodes)
	e.nodes["pg1"].Exec("CREATE TABLE big AS SELECT g, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 500000) g")
	e.waitFor(time.Minute, "the table on pg2", func() bool {
		n, err := e.nodes["pg2"].QueryInt("SELECT count(*) FROM big")
		return err == nil && n == 500000
	})
	e.waitShardState("healthy", time.Minute)
	src := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres", e.nodes["pg2"].Port)
	var ratios, ours, plain []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var oursTook, plainTook time.Duration
		var size float64
		var ourPath string
		runOurs := func() {
			start := time.Now()
			e.mustDo("POST", "/v1/clusters/app/shards/s1/backups", nil, http.StatusAccepted, &ref)
			op := e.waitOperation(ref.ID, 5*time.Minute)
			oursTook = time.Since(start)
			if op.State != "succeeded" {
				b.Fatalf("backup %+v", op)
			}
			var list api.BackupList
			e.mustDo("GET", "/v1/clusters/app/shards/s1/backups", nil, http.StatusOK, &list)
			last := list.Backups[len(list.Backups)-1]
			size, ourPath = float64(last.SizeBytes), last.Path
		}
		dir := filepath.Join(e.root, "plain", fmt.Sprint(i))
		runPlain := func() {
			if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := e.pg.Runner.Chown(filepath.Dir(dir)); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if _, err := e.pg.Runner.Run(context.Background(), "pg_basebackup", "-D", dir, "-d", src, "-X", "stream", "-c", "fast"); err != nil {
				b.Fatal(err)
			}
			plainTook = time.Since(start)
		}
		// Alternate which goes first: the second of a pair runs on a
		// machine still writing the first's copy back.
		if i%2 == 0 {
			runOurs()
			runPlain()
		} else {
			runPlain()
			runOurs()
		}
		b.StopTimer()
		_ = os.RemoveAll(dir)
		_ = os.RemoveAll(ourPath)
		b.StartTimer()
		ours = append(ours, size/oursTook.Seconds()/1e6)
		plain = append(plain, size/plainTook.Seconds()/1e6)
		ratios = append(ratios, plainTook.Seconds()/oursTook.Seconds())
	}
	med := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	b.ReportMetric(med(ratios), "ratio")
	b.ReportMetric(med(ours), "ours-MB/s")
	b.ReportMetric(med(plain), "plain-MB/s")
}

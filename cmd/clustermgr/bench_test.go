package main

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"
)

// BenchmarkReelectionAfterSIGKILL runs three server processes with the
// default (LAN) Raft timing. Each iteration kills the leader with SIGKILL
// and measures the time until a write is committed through a surviving
// replica (clients retry every 20 ms across the survivors), then restarts
// the killed replica and waits for it to catch up. It reports the median
// and the worst iteration.
func BenchmarkReelectionAfterSIGKILL(b *testing.B) {
	g := startProcGroup(b, buildBinary(b), 3)
	ctx := context.Background()
	var gaps []time.Duration
	for i := 0; i < b.N; i++ {
		old := g.leader(20 * time.Second)
		g.kill(old)
		start := time.Now()
		name := fmt.Sprintf("after-kill-%d", i)
		for committed := false; !committed; {
			if time.Since(start) > 30*time.Second {
				b.Fatalf("no write committed within 30s of killing %s", old.id)
			}
			for _, n := range g.nodes {
				if n.cmd == nil {
					continue
				}
				cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				status, _, err := call(cctx, "POST", n.url()+"/v1/clusters", map[string]any{"name": name})
				cancel()
				if err == nil && (status == 201 || status == 409) {
					committed = true
					break
				}
			}
			if !committed {
				time.Sleep(20 * time.Millisecond)
			}
		}
		gaps = append(gaps, time.Since(start))
		b.StopTimer()
		g.start(old)
		g.leader(20 * time.Second)
		b.StartTimer()
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	b.ReportMetric(float64(gaps[len(gaps)/2].Milliseconds()), "median-ms")
	b.ReportMetric(float64(gaps[len(gaps)-1].Milliseconds()), "max-ms")
}

package fleetsim_test

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/fleetsim"
	"github.com/clustermgr/clustermgr/pkg/detector"
)

// BenchmarkProbe probes the 300 nodes of a simulated fleet through the
// manager's detector (kept connections, 32 probes at once, as a replica's
// rounds run them) and reports the process's CPU per probe, the detector
// and the simulator together (go test -cpuprofile splits them).
func BenchmarkProbe(b *testing.B) {
	f, err := fleetsim.NewFleet("127.0.0.1", 100, 3, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var targets []detector.Target
	for _, sh := range f.Shards {
		for i, n := range sh.Nodes {
			targets = append(targets, detector.Target{Key: sh.Name + "/" + n.Name, Primary: i == 0, Host: n.Host, Port: n.Port, User: "clustermgr"})
		}
	}
	det := detector.New(5*time.Second, time.Now, "bench")
	defer det.Close()
	ctx := context.Background()
	for _, t := range targets { // connect outside the measurement
		if r := det.Probe(ctx, t); !r.OK {
			b.Fatalf("%s: %s", t.Key, r.Err)
		}
	}
	var next atomic.Int64
	var failed atomic.Int64
	cpu0 := cpuTime()
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if r := det.Probe(ctx, targets[i%int64(len(targets))]); !r.OK {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d probes failed", n)
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/probe")
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package fleetsim_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/authtest"

	"github.com/clustermgr/clustermgr/internal/fleetsim"
	"github.com/clustermgr/clustermgr/pkg/ha"
)

// TestFleet_Profile runs an in-process group over FLEET_PROFILE_NODES
// simulated nodes at 1 s probes for FLEET_PROFILE_FOR (go test
// -cpuprofile shows where the time goes); skipped unless set.
func TestFleet_Profile(t *testing.T) {
	f, g, d := profiledFleet(t, 30*time.Second)
	time.Sleep(d)
	healthy := 0
	for _, sh := range g.shards("fleet") {
		if sh.State == "healthy" {
			healthy++
		}
	}
	t.Logf("%d of %d shards healthy", healthy, len(f.Shards))
	for _, app := range f.ProbeApps() {
		p := f.Probes(app)
		t.Logf("%s: %d probe periods, p50 %v p99 %v", app, p.Count(), p.Quantile(0.5), p.Quantile(0.99))
	}
	sh := f.Shards[len(f.Shards)/2]
	sh.Crash(0)
	start := time.Now()
	g.waitFor(30*time.Second, "a promotion", func() bool { return sh.Nodes[1].Primary() || sh.Nodes[2].Primary() })
	t.Logf("promoted after %v", time.Since(start))
}

// TestFleet_ProfileReads sends GET .../primary at 1,000 requests/s for
// FLEET_PROFILE_FOR to the leader, then to a follower, over
// FLEET_PROFILE_NODES simulated nodes, and logs the latencies; skipped
// unless set.
func TestFleet_ProfileReads(t *testing.T) {
	f, g, d := profiledFleet(t, 10*time.Second)
	g.waitFor(60*time.Second, "every shard healthy", func() bool {
		for _, sh := range g.shards("fleet") {
			if sh.State != "healthy" {
				return false
			}
		}
		return true
	})
	path := os.Getenv("FLEET_PROFILE_PATH")
	if path == "" {
		path = "/v1/clusters/fleet/shards/s%d/primary"
	}
	t.Logf("%d connections accepted", f.Accepted())
	for _, r := range g.reps {
		role := "follower"
		if r.Store.IsLeader() {
			role = "leader"
		}
		var lat, slow []time.Duration
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := time.Now()
		for i := 0; time.Since(start) < d; i++ {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Millisecond)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := path
				if strings.Contains(p, "%d") {
					p = fmt.Sprintf(p, i%len(f.Shards)+1)
				}
				req, _ := http.NewRequest("GET", r.URL+p, nil)
				req.Header.Set("Authorization", "Bearer "+authtest.AdminToken)
				t0 := time.Now()
				resp, err := g.api.Do(req)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				el := time.Since(t0)
				mu.Lock()
				lat = append(lat, el)
				if el > 20*time.Millisecond {
					slow = append(slow, t0.Sub(start)%time.Second)
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		if len(lat) == 0 {
			t.Fatalf("%s: no answer", role)
		}
		t.Logf("%d connections accepted", f.Accepted())
		hist := map[int]int{}
		for _, x := range slow {
			hist[int(x/(100*time.Millisecond))]++
		}
		t.Logf("slow requests by start within the second (100 ms buckets): %v", hist)
		t.Logf("%s: %d answers, p50 %v p99 %v max %v", role, len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	}
}

// profiledFleet starts the fleet of FLEET_PROFILE_NODES nodes and a group
// at 1 s probes with every shard registered, and returns them with
// FLEET_PROFILE_FOR (def when unset); it skips the test when
// FLEET_PROFILE_NODES is not set.
func profiledFleet(t *testing.T, def time.Duration) (*fleetsim.Fleet, *group, time.Duration) {
	n, _ := strconv.Atoi(os.Getenv("FLEET_PROFILE_NODES"))
	if n == 0 {
		t.Skip("FLEET_PROFILE_NODES is not set")
	}
	d, err := time.ParseDuration(os.Getenv("FLEET_PROFILE_FOR"))
	if err != nil {
		d = def
	}
	f, err := fleetsim.NewFleet("127.0.0.1", n/3, 3, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	g := newGroup(t, ha.Config{ProbeInterval: time.Second})
	g.register("fleet", f)
	return f, g, d
}

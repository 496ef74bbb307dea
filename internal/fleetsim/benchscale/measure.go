package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
)

// cpuTime is a process's user plus system CPU time so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name (which may hold spaces).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100, nil // USER_HZ
}

// memory returns a process's resident set now and at its peak, in bytes.
func memory(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak, nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// quantile of sorted durations.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(q*float64(len(d))+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return quantile(s, 0.5)
}

// load sends GETs of paths (one picked at random for each request) to
// the replicas in turn at rate per second for d, each on its own
// goroutine (at most 1,000 at once), and returns the latencies sorted,
// the count of failed requests, and the latencies by replica (sorted).
func load(g *group, rate int, d time.Duration, path func(r *rand.Rand) string) (lat []time.Duration, failed int, byRep [][]time.Duration) {
	byRep = make([][]time.Duration, len(g.urls))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 1000)
	rnd := rand.New(rand.NewPCG(1, 2))
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * interval)
		if at.Sub(start) >= d {
			break
		}
		time.Sleep(time.Until(at))
		rep := i % len(g.urls)
		url := g.urls[rep] + path(rnd)
		select {
		case sem <- struct{}{}:
		default:
			mu.Lock()
			failed++
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t := time.Now()
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("Authorization", "Bearer "+g.token)
			resp, err := g.http.Do(req)
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			el := time.Since(t)
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				failed++
				return
			}
			lat = append(lat, el)
			byRep[rep] = append(byRep[rep], el)
		}()
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	for _, l := range byRep {
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	}
	return lat, failed, byRep
}

// byReplica says each replica's p50 and p99 of lat, the leader's first.
func byReplica(lat [][]time.Duration, leader int) string {
	var out []string
	for i, l := range lat {
		who := fmt.Sprintf("m%d", i+1)
		if i == leader {
			who += " (leader)"
		}
		out = append(out, fmt.Sprintf("%s %v / %v", who, quantile(l, 0.5), quantile(l, 0.99)))
	}
	if leader >= 0 && leader < len(out) {
		out[0], out[leader] = out[leader], out[0]
	}
	return strings.Join(out, ", ")
}

// trial is one failover as the bench saw it: from the primary's crash to
// the leader's decision (the operation's creation) and to pg_promote on
// the standby it chose.
type trial struct {
	shard               string
	decision, promotion time.Duration
}

// failover crashes the primary of shard sh (served by s, registered in
// cluster) and waits for the failover.
func failover(g *group, s *sim, cluster string, sh simShard) (trial, error) {
	tr := trial{shard: sh.Name}
	c := &http.Client{Timeout: 5 * time.Second}
	t0 := time.Now()
	resp, err := c.Post(s.control+"/fault?kind=crash&shard="+sh.Name+"&node="+sh.Nodes[0].Name, "", nil)
	if err != nil {
		return tr, err
	}
	resp.Body.Close()
	var promotedAt time.Time
	if !waitUntil(60*time.Second, func() bool {
		for _, n := range sh.Nodes[1:] {
			var st nodeState
			if getJSON(c, s.control+"/node?shard="+sh.Name+"&node="+n.Name, "", &st) == nil && st.Primary {
				promotedAt = st.PromotedAt
				return true
			}
		}
		return false
	}) {
		var shard json.RawMessage
		_ = g.get("/v1/clusters/"+cluster+"/shards/"+sh.Name, &shard)
		return tr, fmt.Errorf("%s: no standby promoted within 60 s; the shard: %s", sh.Name, shard)
	}
	tr.promotion = promotedAt.Sub(t0)
	var op *api.Operation
	if !waitUntil(30*time.Second, func() bool {
		var ops api.OperationList
		if g.get("/v1/operations", &ops) != nil {
			return false
		}
		for i, o := range ops.Operations {
			if o.Kind == "failover" && o.Cluster == cluster && o.Shard == sh.Name && o.State == "succeeded" {
				op = &ops.Operations[i]
				return true
			}
		}
		return false
	}) {
		return tr, fmt.Errorf("%s: no succeeded failover operation in the API", sh.Name)
	}
	tr.decision = op.CreatedAt.Sub(t0)
	return tr, nil
}

// skippedProbes reads a replica's clustermgr_probes_skipped_total by
// reason from its /metrics.
func skippedProbes(c *http.Client, base, token string) (map[string]float64, error) {
	req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %d", base, resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	const prefix = `clustermgr_probes_skipped_total{reason="`
	for sc.Scan() {
		reason, rest, ok := strings.Cut(strings.TrimPrefix(sc.Text(), prefix), `"} `)
		if !ok || !strings.HasPrefix(sc.Text(), prefix) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err == nil {
			out[reason] = v
		}
	}
	return out, sc.Err()
}

// perSecond says the growth of each reason from a to b over el.
func perSecond(a, b map[string]float64, el time.Duration) string {
	var out []string
	for reason, v := range b {
		out = append(out, fmt.Sprintf("%s %.1f/s", reason, (v-a[reason])/el.Seconds()))
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// profileLeader fetches the leader's CPU profile over the steady window
// (at most 60 s, the API's bound) into b.cpuProfile suffixed with the
// fleet size; the channel gets the outcome (nil at once when not asked).
func (b *bench) profileLeader(fr *fleetRun, base string, nodes int) <-chan error {
	out := make(chan error, 1)
	if b.cpuProfile == "" {
		out <- nil
		return out
	}
	secs := min(int(b.window.Seconds()), 60)
	path := fmt.Sprintf("%s.%d", b.cpuProfile, nodes)
	go func() {
		out <- fetchProfile(base, fr.g.token, "profile", secs, path)
	}()
	return out
}

// traceLeader fetches the leader's execution trace over the first
// seconds of the API load (at most 5) into b.trace suffixed with the
// fleet size; the channel gets the outcome (nil at once when not asked).
func (b *bench) traceLeader(fr *fleetRun, base string, nodes int) <-chan error {
	out := make(chan error, 1)
	if b.trace == "" {
		out <- nil
		return out
	}
	secs := max(min(int(b.apiLoad.Seconds()), 5), 1)
	path := fmt.Sprintf("%s.%d", b.trace, nodes)
	go func() {
		out <- fetchProfile(base, fr.g.token, "trace", secs, path)
	}()
	return out
}

// fetchProfile writes the leader's profile (or trace) over secs to path.
func fetchProfile(base, token, profile string, secs int, path string) error {
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/v1/manager/pprof/%s?seconds=%d", base, profile, secs), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: time.Duration(secs+30) * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", profile, resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/clustermgr/clustermgr/internal/fleetsim"
	"github.com/clustermgr/clustermgr/pkg/api"
)

// shardsPerSim is how many shards one simulator process serves: 2,001
// listeners and three managers' connections to each stay under a
// process's 20,000 open files.
const shardsPerSim = 667

func numCPU() int { return runtime.NumCPU() }

type bench struct {
	bin    string
	window time.Duration
	trials int
	probe  time.Duration
	keep   bool
	rnd    *rand.Rand
	// logLevel is the replicas' log.level; apiLoad how long each API
	// figure is measured (0: not at all).
	logLevel string
	apiLoad  time.Duration
	// raftTimeout, when set, is the replicas' Raft heartbeat and
	// election timeout (default: the configuration's).
	raftTimeout time.Duration
	// simNice is the simulator processes' nice value.
	simNice int
	// agents runs an agent for each simulated node.
	agents bool
	// cpuProfile, when set, is where the leader's CPU profile over the
	// steady window goes (suffixed with the fleet size).
	cpuProfile string
	// trace, when set, is where the leader's execution trace over the
	// first seconds of the GET .../primary load goes (suffixed with the
	// fleet size).
	trace string
}

// result holds the figures of one fleet size.
type result struct {
	nodes, shards int
	register      time.Duration // every shard registered
	healthy       time.Duration // and every shard seen healthy
	healthyAtOnce int           // shards healthy at the last look then
	terms         uint64        // Raft terms that began in the window
	load          string        // load average at the end of the window
	cpu           [3]float64    // cores, per replica
	simCPU        float64       // cores, the simulator processes together
	skipped       string        // the leader's skipped probes per second, by reason
	rss, peak     [3]int64
	leader        int
	probeP50      time.Duration
	probeP99      time.Duration
	probes        uint64
	logBytes      float64 // per minute
	logEntries    float64 // per minute
	snapshot      *api.Snapshot
	primaryLat    []time.Duration
	primaryFailed int
	clusterLat    []time.Duration
	clusterFailed int
	failovers     []trial
	hungFailovers []trial
	hung          int
	agents        string // whether the nodes ran agents, and why not
}

// simCPU is the CPU time the simulator processes have used.
func (fr *fleetRun) simCPU() time.Duration {
	var sum time.Duration
	for _, s := range fr.sims {
		c, _ := cpuTime(s.cmd.Process.Pid)
		sum += c
	}
	return sum
}

// fleetRun is a running group over simulated shards.
type fleetRun struct {
	dir    string
	g      *group
	sims   []*sim
	shards []simShard
	simOf  map[string]*sim
}

// agentsFor reports whether a fleet of n nodes runs agents, and says
// why not when they were asked for: a leader keeps a connection to each
// node and one to each node's agent, and past the open-file limit it sees
// healthy nodes down.
func (b *bench) agentsFor(n int) (bool, string) {
	if !b.agents {
		return false, "none (-agents=false)"
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		if need := uint64(2*n + 512); lim.Cur < need {
			return false, fmt.Sprintf("none: a leader needs %d open files with them, the limit is %d", need, lim.Cur)
		}
	}
	return true, "one per node"
}

func (b *bench) start(shards int) (*fleetRun, error) {
	dir, err := os.MkdirTemp("", "benchscale-")
	if err != nil {
		return nil, err
	}
	fr := &fleetRun{dir: dir, simOf: map[string]*sim{}}
	agents, _ := b.agentsFor(3 * shards)
	for first := 1; first <= shards; first += shardsPerSim {
		s, err := startSim(first, min(shardsPerSim, shards-first+1), b.simNice, agents)
		if err != nil {
			fr.stop(b.keep)
			return nil, err
		}
		fr.sims = append(fr.sims, s)
		for _, sh := range s.shards {
			fr.shards = append(fr.shards, sh)
			fr.simOf[sh.Name] = s
		}
	}
	fr.g, err = startGroup(b.bin, dir, b.probe, b.logLevel, b.raftTimeout)
	if err != nil {
		fr.stop(b.keep)
		return nil, err
	}
	return fr, nil
}

func (fr *fleetRun) stop(keep bool) {
	if fr.g != nil {
		fr.g.stop()
	}
	for _, s := range fr.sims {
		s.stop()
	}
	if keep {
		fmt.Fprintf(os.Stderr, "kept %s\n", fr.dir)
	} else {
		_ = os.RemoveAll(fr.dir)
	}
}

// shardsPerCluster is how many shards each cluster of the fleet has.
const shardsPerCluster = 10

// clusterOf is the cluster shard i is registered in.
func clusterOf(i int) string { return fmt.Sprintf("c%d", i/shardsPerCluster+1) }

// register registers every shard (16 requests at a time) and returns when
// the last is registered.
func (fr *fleetRun) register() error {
	for i := 0; i < len(fr.shards); i += shardsPerCluster {
		if err := fr.g.postRetry("/v1/clusters", map[string]any{"name": clusterOf(i), "pg_user": "postgres"}, http.StatusCreated); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(fr.shards))
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				sh := fr.shards[i]
				var nodes []map[string]any
				var err error
				for j, n := range sh.Nodes {
					role := "standby"
					if j == 0 {
						role = "primary"
					}
					node := map[string]any{"name": n.Name, "host": "127.0.0.1", "port": n.Port, "role": role}
					if n.Agent != "" && err == nil {
						name := sh.Name + "-" + n.Name
						err = fr.g.postRetry("/v1/agents", map[string]any{"name": name, "url": n.Agent}, http.StatusCreated)
						node["agent"], node["data_dir"] = name, "/sim/"+sh.Name+"/"+n.Name
					}
					nodes = append(nodes, node)
				}
				if err != nil {
					errs <- err
					continue
				}
				err = fr.g.postRetry("/v1/clusters/"+clusterOf(i)+"/shards", map[string]any{"name": sh.Name, "nodes": nodes}, http.StatusCreated)
				if err != nil && strings.Contains(err.Error(), ": 409 ") && waitUntil(10*time.Second, func() bool {
					// Registered by a try whose answer an election lost
					// (the replica asked may not have applied it yet).
					var got api.Shard
					return fr.g.get("/v1/clusters/"+clusterOf(i)+"/shards/"+sh.Name, &got) == nil
				}) {
					err = nil
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range fr.shards {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs
}

// allHealthy reports whether the API shows every shard healthy.
func (fr *fleetRun) allHealthy() bool {
	healthy, n := fr.healthy(nil)
	return n == len(fr.shards) && healthy == n
}

// healthy counts the shards the API shows, and those healthy; each
// healthy one is added to seen when it is set.
func (fr *fleetRun) healthy(seen map[string]bool) (healthy, n int) {
	var cl api.ClusterList
	if fr.g.get("/v1/clusters", &cl) != nil {
		return 0, 0
	}
	for _, c := range cl.Clusters {
		for _, sh := range c.Shards {
			n++
			if sh.State == "healthy" {
				healthy++
				if seen != nil {
					seen[c.Name+"/"+sh.Name] = true
				}
			}
		}
	}
	return healthy, n
}

func (fr *fleetRun) resetProbes() {
	for _, s := range fr.sims {
		if resp, err := http.Post(s.control+"/probes/reset", "", nil); err == nil {
			resp.Body.Close()
		}
	}
}

// probeStats returns the probe periods of the replica (by its
// application_name, "clustermgr m1") over the whole fleet.
func (fr *fleetRun) probeStats(replica string) *fleetsim.ProbeStats {
	var all fleetsim.ProbeStats
	for _, s := range fr.sims {
		var b map[string]map[int]uint64
		if getJSON(http.DefaultClient, s.control+"/probes", "", &b) == nil {
			all.Add(b["clustermgr "+replica])
		}
	}
	return &all
}

// pick returns n shards at random among those not in used, marking them.
func (b *bench) pick(fr *fleetRun, used map[string]bool, n int) []int {
	var out []int
	for len(out) < n && len(used) < len(fr.shards) {
		i := b.rnd.IntN(len(fr.shards))
		if !used[fr.shards[i].Name] {
			used[fr.shards[i].Name] = true
			out = append(out, i)
		}
	}
	return out
}

func (b *bench) failovers(fr *fleetRun, idx []int) ([]trial, error) {
	var out []trial
	for _, i := range idx {
		sh := fr.shards[i]
		// The crash falls at a random point of the probe period (the
		// one-shard group's would otherwise always fall just after a
		// probe: the bench starts right after one found it healthy).
		time.Sleep(time.Duration(b.rnd.Int64N(int64(b.probe))))
		tr, err := failover(fr.g, fr.simOf[sh.Name], clusterOf(i), sh)
		if err != nil {
			return nil, err
		}
		out = append(out, tr)
		time.Sleep(2 * b.probe)
	}
	return out, nil
}

// single measures failovers of a group of one shard: a fresh group for
// each.
func (b *bench) single() ([]trial, error) {
	var out []trial
	for range b.trials {
		fr, err := b.start(1)
		if err != nil {
			return nil, err
		}
		err = func() error {
			if err := fr.register(); err != nil {
				return err
			}
			if !waitUntil(60*time.Second, fr.allHealthy) {
				return fmt.Errorf("the shard is not healthy within 60 s")
			}
			time.Sleep(3 * b.probe)
			trs, err := b.failovers(fr, []int{0})
			out = append(out, trs...)
			return err
		}()
		fr.stop(b.keep && err != nil)
		if err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(os.Stderr, "single shard: decisions %v\n", decisions(out))
	return out, nil
}

func decisions(trs []trial) []time.Duration {
	var out []time.Duration
	for _, t := range trs {
		out = append(out, t.decision)
	}
	return out
}

func promotions(trs []trial) []time.Duration {
	var out []time.Duration
	for _, t := range trs {
		out = append(out, t.promotion)
	}
	return out
}

// fleet measures a fleet of n nodes.
func (b *bench) fleet(n int) (res *result, err error) {
	shards := (n + 2) / 3
	fr, err := b.start(shards)
	if err != nil {
		return nil, err
	}
	defer func() { fr.stop(b.keep) }()
	r := &result{nodes: shards * 3, shards: shards}
	_, r.agents = b.agentsFor(r.nodes)
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%d nodes: "+format+"\n", append([]any{r.nodes}, args...)...)
	}
	start := time.Now()
	if err := fr.register(); err != nil {
		return nil, err
	}
	r.register = time.Since(start)
	logf("registered in %v", r.register.Round(time.Millisecond))
	// Every shard seen healthy, not all at one instant: on a manager
	// that cannot keep up, some probe always times out somewhere (the
	// table's probe periods and the events show it).
	seen := map[string]bool{}
	var last int
	if !waitUntil(5*time.Minute, func() bool {
		time.Sleep(3 * time.Second)
		last, _ = fr.healthy(seen)
		return len(seen) == len(fr.shards)
	}) {
		return nil, fmt.Errorf("only %d of %d shards seen healthy within 5 min", len(seen), len(fr.shards))
	}
	r.healthy, r.healthyAtOnce = time.Since(start), last
	logf("every shard seen healthy after %v (%d healthy at the last look)", r.healthy.Round(time.Millisecond), last)
	time.Sleep(5 * b.probe)

	// The steady window: nothing fails.
	r.leader = fr.g.leader()
	if r.leader < 0 {
		return nil, fmt.Errorf("no leader")
	}
	var m0, m1 api.Manager
	lu := fr.g.urls[r.leader]
	if err := getJSON(fr.g.http, lu+"/v1/manager", fr.g.token, &m0); err != nil {
		return nil, err
	}
	var cpu0 [3]time.Duration
	for i, p := range fr.g.reps {
		cpu0[i], _ = cpuTime(p.cmd.Process.Pid)
	}
	sim0 := fr.simCPU()
	skip0, _ := skippedProbes(fr.g.http, lu, fr.g.token)
	fr.resetProbes()
	t0 := time.Now()
	profiled := b.profileLeader(fr, lu, len(fr.shards)*3)
	time.Sleep(b.window)
	el := time.Since(t0)
	if err := <-profiled; err != nil {
		logf("leader cpu profile: %v", err)
	} else if b.cpuProfile != "" {
		logf("leader cpu profile in %s.%d", b.cpuProfile, len(fr.shards)*3)
	}
	for i, p := range fr.g.reps {
		c, _ := cpuTime(p.cmd.Process.Pid)
		r.cpu[i] = (c - cpu0[i]).Seconds() / el.Seconds()
		r.rss[i], r.peak[i], _ = memory(p.cmd.Process.Pid)
	}
	r.simCPU = (fr.simCPU() - sim0).Seconds() / el.Seconds()
	if skip1, err := skippedProbes(fr.g.http, lu, fr.g.token); err == nil {
		r.skipped = perSecond(skip0, skip1, el)
	}
	r.load = loadAvg()
	ps := fr.probeStats(fmt.Sprintf("m%d", r.leader+1))
	r.probeP50, r.probeP99, r.probes = ps.Quantile(0.5), ps.Quantile(0.99), ps.Count()
	if err := getJSON(fr.g.http, lu+"/v1/manager", fr.g.token, &m1); err != nil {
		return nil, err
	}
	// A change of leader is reported, not hidden: the window's figures
	// then mix two leaders' work.
	r.terms = m1.Term - m0.Term
	r.logBytes = float64(m1.AppliedBytes-m0.AppliedBytes) / el.Minutes()
	r.logEntries = float64(m1.LastIndex-m0.LastIndex) / el.Minutes()
	logf("window: cpu %.2f %.2f %.2f cores (leader m%d), simulator %.2f cores, probes skipped by the leader: %s, probe p50 %v p99 %v, log %.0f B/min, %d elections", r.cpu[0], r.cpu[1], r.cpu[2], r.leader+1, r.simCPU, r.skipped, r.probeP50, r.probeP99, r.logBytes, r.terms)

	// The API at 1,000 requests/s, spread over the replicas.
	if b.apiLoad > 0 {
		var primaryBy, clusterBy [][]time.Duration
		traced := b.traceLeader(fr, lu, len(fr.shards)*3)
		r.primaryLat, r.primaryFailed, primaryBy = load(fr.g, 1000, b.apiLoad, func(rnd *rand.Rand) string {
			i := rnd.IntN(len(fr.shards))
			return "/v1/clusters/" + clusterOf(i) + "/shards/" + fr.shards[i].Name + "/primary"
		})
		if err := <-traced; err != nil {
			logf("leader trace: %v", err)
		} else if b.trace != "" {
			logf("leader trace in %s.%d", b.trace, len(fr.shards)*3)
		}
		r.clusterLat, r.clusterFailed, clusterBy = load(fr.g, 1000, b.apiLoad, func(rnd *rand.Rand) string {
			return "/v1/clusters/" + clusterOf(rnd.IntN(len(fr.shards)))
		})
		logf("GET primary p99 %v (%d failed), GET cluster p99 %v (%d failed)", quantile(r.primaryLat, 0.99), r.primaryFailed, quantile(r.clusterLat, 0.99), r.clusterFailed)
		// GET .../primary is the leader's answer: a follower forwards it.
		logf("GET primary p50 / p99 by the replica asked: %s", byReplica(primaryBy, r.leader))
		logf("GET cluster p50 / p99 by the replica asked: %s", byReplica(clusterBy, r.leader))
	}

	used := map[string]bool{}
	if r.failovers, err = b.failovers(fr, b.pick(fr, used, b.trials)); err != nil {
		return nil, err
	}
	logf("failover decisions %v, promotions %v", decisions(r.failovers), promotions(r.failovers))

	// 1% of the nodes hang (not those of the shards measured).
	trialShards := b.pick(fr, used, b.trials)
	r.hung = r.nodes / 100
	for _, i := range b.pick(fr, used, r.hung) {
		sh := fr.shards[i]
		node := sh.Nodes[b.rnd.IntN(len(sh.Nodes))]
		resp, err := http.Post(fr.simOf[sh.Name].control+"/fault?kind=hang&shard="+sh.Name+"&node="+node.Name, "", nil)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
	}
	time.Sleep(10 * b.probe)
	if r.hungFailovers, err = b.failovers(fr, trialShards); err != nil {
		return nil, err
	}
	logf("with %d nodes hung: failover decisions %v, promotions %v", r.hung, decisions(r.hungFailovers), promotions(r.hungFailovers))
	// The last snapshot any replica wrote (the registration's log is
	// long enough for one).
	for _, u := range fr.g.urls {
		var m api.Manager
		if getJSON(fr.g.http, u+"/v1/manager", fr.g.token, &m) == nil && m.LastSnapshot != nil && (r.snapshot == nil || m.LastSnapshot.At.After(r.snapshot.At)) {
			r.snapshot = m.LastSnapshot
		}
	}
	return r, nil
}

// Command benchscale measures one manager group running a simulated
// fleet (make bench-scale): three clustermgr server processes with the
// default settings (probes every second), simulator processes serving
// shards of three nodes on loopback ports, every shard registered through
// the API. It prints a table of the figures for each fleet size and for a
// single-shard group (the failover baseline).
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	serve := flag.Bool("serve-fleet", false, "run as a simulator process (internal)")
	first := flag.Int("first", 1, "first shard number (with -serve-fleet)")
	shards := flag.Int("shards", 1, "shards to serve (with -serve-fleet)")
	simToken := flag.String("agent-token", "", "the agents' token (with -serve-fleet; none: no agents)")
	bin := flag.String("bin", "bin/clustermgr", "the clustermgr binary")
	nodes := flag.String("nodes", "1000,10000", "fleet sizes, comma-separated (nodes, 3 per shard)")
	window := flag.Duration("duration", time.Minute, "steady-state window over which CPU, probe periods and log growth are measured")
	trials := flag.Int("trials", 3, "failovers measured for each case")
	probe := flag.Duration("probe", time.Second, "ha.probe_interval of the group")
	keep := flag.Bool("keep", false, "keep the group's directory (logs, data)")
	logLevel := flag.String("log-level", "warn", "the replicas' log.level")
	raftTimeout := flag.Duration("raft-timeout", 0, "the replicas' raft.heartbeat_timeout and election_timeout (leader lease half of it); 0 keeps the defaults")
	simNice := flag.Int("sim-nice", 0, "the simulator processes' nice value (0-19): the simulated servers stand for other hosts, and a higher value gives the replicas the CPU first")
	agents := flag.Bool("agents", true, "run a simulated agent for each node, registered with it: the leader renews the primaries' leases and declares the standbys' roles to them")
	cpuProfile := flag.String("cpuprofile", "", "write the leader's CPU profile over the steady window (at most 60 s) to this file, suffixed with the fleet size")
	trace := flag.String("trace", "", "write the leader's execution trace over the first seconds (at most 5) of the GET .../primary load to this file, suffixed with the fleet size")
	apiLoad := flag.Duration("api-load", 10*time.Second, "how long each API latency figure is measured at 1,000 requests/s (0: skipped)")
	flag.Parse()
	if *serve {
		if err := serveFleet(*first, *shards, *simToken); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *simNice < 0 || *simNice > 19 {
		log.Fatalf("-sim-nice: %d is not from 0 to 19", *simNice)
	}
	var sizes []int
	for _, f := range strings.Split(*nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 3 {
			log.Fatalf("-nodes: %q is not a fleet size of at least 3 nodes", f)
		}
		sizes = append(sizes, n)
	}
	b := &bench{bin: *bin, window: *window, trials: *trials, probe: *probe, keep: *keep, logLevel: *logLevel, apiLoad: *apiLoad, raftTimeout: *raftTimeout, simNice: *simNice, agents: *agents, cpuProfile: *cpuProfile, trace: *trace, rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))}
	host, _ := os.Hostname()
	fmt.Printf("benchscale %s on %s: %d CPUs, probe every %v, %v steady window, %d failovers per case, raft timeout %s, simulator nice %d, agents %v\n",
		time.Now().Format("2006-01-02 15:04"), host, numCPU(), *probe, *window, *trials, raftName(*raftTimeout), *simNice, *agents)
	base, err := b.single()
	if err != nil {
		log.Fatalf("single-shard group: %v", err)
	}
	var results []*result
	for _, n := range sizes {
		r, err := b.fleet(n)
		if err != nil {
			log.Fatalf("%d nodes: %v", n, err)
		}
		results = append(results, r)
	}
	printTable(os.Stdout, base, results)
}

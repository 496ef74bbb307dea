package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/clustermgr/clustermgr/internal/fleetsim"
)

// simShard is one simulated shard as a simulator process describes it.
type simShard struct {
	Name  string    `json:"name"`
	Nodes []simNode `json:"nodes"`
}

type simNode struct {
	Name  string `json:"name"`
	Port  int    `json:"port"`
	Agent string `json:"agent,omitempty"` // its agent's URL
}

// nodeState is a simulated node's role as its process reports it.
type nodeState struct {
	Primary    bool      `json:"primary"`
	PromotedAt time.Time `json:"promoted_at"`
}

// serveFleet is the simulator process: it serves shards shards of 3
// nodes numbered from first on 127.0.0.1, with an agent for each taking
// agentToken unless it is empty, prints "control <addr>" once they
// listen, and answers the driver on that address until its stdin closes
// (the driver ended).
func serveFleet(first, shards int, agentToken string) error {
	f, err := fleetsim.NewFleetFrom("127.0.0.1", first, shards, 3, time.Now)
	if err != nil {
		return err
	}
	defer f.Close()
	if agentToken != "" {
		if err := f.StartAgents("127.0.0.1", agentToken); err != nil {
			return err
		}
	}
	byName := map[string]*fleetsim.Shard{}
	var desc []simShard
	for _, sh := range f.Shards {
		byName[sh.Name] = sh
		d := simShard{Name: sh.Name}
		for i, n := range sh.Nodes {
			d.Nodes = append(d.Nodes, simNode{Name: n.Name, Port: n.Port})
			if i < len(sh.Agents) {
				d.Nodes[i].Agent = sh.Agents[i].URL()
			}
		}
		desc = append(desc, d)
	}
	node := func(r *http.Request) (*fleetsim.Shard, int, error) {
		sh := byName[r.URL.Query().Get("shard")]
		if sh == nil {
			return nil, 0, fmt.Errorf("no shard %q here", r.URL.Query().Get("shard"))
		}
		for i, n := range sh.Nodes {
			if n.Name == r.URL.Query().Get("node") {
				return sh, i, nil
			}
		}
		return nil, 0, fmt.Errorf("no node %q in %s", r.URL.Query().Get("node"), sh.Name)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fleet", func(w http.ResponseWriter, r *http.Request) { _ = json.NewEncoder(w).Encode(desc) })
	mux.HandleFunc("POST /fault", func(w http.ResponseWriter, r *http.Request) {
		sh, i, err := node(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		switch r.URL.Query().Get("kind") {
		case "crash":
			sh.Crash(i)
		case "hang":
			sh.Servers[i].SetFault(fleetsim.Fault{Hang: true})
		default:
			http.Error(w, "kind is crash or hang", http.StatusBadRequest)
		}
	})
	mux.HandleFunc("GET /node", func(w http.ResponseWriter, r *http.Request) {
		sh, i, err := node(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		n := sh.Nodes[i]
		_ = json.NewEncoder(w).Encode(nodeState{Primary: n.Primary(), PromotedAt: n.PromotedAt()})
	})
	mux.HandleFunc("GET /probes", func(w http.ResponseWriter, r *http.Request) {
		out := map[string]map[int]uint64{}
		for _, app := range f.ProbeApps() {
			out[app] = f.Probes(app).Buckets()
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("POST /probes/reset", func(w http.ResponseWriter, r *http.Request) {
		for _, app := range f.ProbeApps() {
			f.Probes(app).Reset()
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Printf("control %s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin)) // until the driver goes
	_ = srv.Close()
	<-done
	return nil
}

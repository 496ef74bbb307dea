package fleetsim

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/fencing"
	"github.com/clustermgr/clustermgr/pkg/pgctl"
)

// Agent is a simulated node's host agent: it answers the commands of
// pkg/agent's HTTP API (with its bearer token and fencing tokens) on its
// node and the node's server, so that the leader's lease renewals and
// role declarations reach one agent per node, as on a real fleet, and the
// operations that go through agents (fencing an old primary, rejoining
// it) complete. It keeps the newest lease and declaration it was sent
// but, unlike a real agent, never fences its primary on its own.
type Agent struct {
	node   *Node
	server *Server
	token  string
	srv    *http.Server
	ln     net.Listener
	done   chan struct{}

	hung atomic.Bool // answers nothing (a stuck agent) while set

	mu     sync.Mutex
	seen   fencing.Token
	state  string // the control file's cluster state while the server is down
	role   string // the last role declared (a lease declares the primary)
	until  time.Time
	counts map[string]uint64 // commands answered, by name
}

// agentStates are the control file's cluster states the agent reports.
const (
	stateInProduction = "in production"
	stateRecovery     = "in archive recovery"
	stateShutDown     = "shut down"
	stateShutDownRec  = "shut down in recovery"
)

// ServeAgent serves node's agent on ln with token; server is the node's
// PostgreSQL server, which stop and start take down and bring back. Close
// stops it.
func ServeAgent(ln net.Listener, token string, node *Node, server *Server) *Agent {
	a := &Agent{node: node, server: server, token: token, ln: ln, done: make(chan struct{}), counts: map[string]uint64{}}
	a.srv = &http.Server{Handler: a, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(a.done)
		_ = a.srv.Serve(ln)
	}()
	return a
}

// URL is the agent's address, as a node registers it.
func (a *Agent) URL() string { return "http://" + a.ln.Addr().String() }

// Close stops the agent and waits for it.
func (a *Agent) Close() {
	_ = a.srv.Close()
	<-a.done
}

// Count is how many times the agent answered command (lease, role, stop…).
func (a *Agent) Count(command string) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.counts[command]
}

// LeaseUntil is when the last lease the agent took runs out, on its clock.
func (a *Agent) LeaseUntil() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.until
}

// Role is the role last declared to the agent, by a declaration or a
// lease.
func (a *Agent) Role() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.role
}

// Hang makes the agent take requests and answer none (a stuck agent
// process) until Heal.
func (a *Agent) Hang() { a.hung.Store(true) }

// Heal makes a hung agent answer again (requests held meanwhile get no
// answer).
func (a *Agent) Heal() { a.hung.Store(false) }

// errStale is a command whose fencing token is older than one seen.
var errStale = errors.New("stale epoch")

// ServeHTTP answers one agent command.
func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.hung.Load() {
		select {
		case <-r.Context().Done(): // the client gave up, or Close
		case <-a.done:
		}
		return
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || got != a.token {
		agentProblem(w, http.StatusUnauthorized, "a valid bearer token is required")
		return
	}
	command, ok := strings.CutPrefix(r.URL.Path, "/v1/agent/")
	if r.Method != http.MethodPost || !ok {
		agentProblem(w, http.StatusNotFound, "no such command")
		return
	}
	var req agent.Request
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		agentProblem(w, http.StatusBadRequest, "decode the command: "+err.Error())
		return
	}
	st, err := a.run(command, req)
	switch {
	case errors.Is(err, errStale):
		agentProblem(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		agentProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(agent.Result{Status: st})
}

// run carries out command and returns the data directory's status after
// it.
func (a *Agent) run(command string, req agent.Request) (agent.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if command != "status" && command != "check-parameters" {
		tok := fencing.Token{Term: req.Term, Epoch: req.Epoch}
		if tok.OlderThan(a.seen) {
			return agent.Status{}, errors.Join(errStale, errors.New("the command carries "+tok.String()+", but "+a.seen.String()+" has been seen"))
		}
		a.seen = tok.Join(a.seen)
	}
	switch command {
	case "status", "check-parameters", "timeline-history":
	case "lease":
		from := time.UnixMilli(req.LeaseFromMillis)
		if req.LeaseFromMillis == 0 {
			from = time.Now()
		}
		a.until, a.role = from.Add(time.Duration(req.LeaseMillis)*time.Millisecond), agent.RolePrimary
	case "role":
		a.role = req.Role
	case "stop":
		a.stop(req.Mode)
	case "start":
		a.start()
	case "restart":
		a.stop(req.Mode)
		a.start()
	case "promote":
		a.node.promote()
	case "configure-standby":
		a.demote(req.PrimaryConnInfo)
	case "rewind":
		if a.running() {
			return agent.Status{}, errors.New("pg_rewind needs the server stopped")
		}
		a.demote(req.Source)
	default:
		return agent.Status{}, errors.New("the simulated agent does not run " + command)
	}
	a.counts[command]++
	return a.status(req.DataDir), nil
}

func (a *Agent) running() bool { return !a.node.down.Load() }

// stop takes the server down: a fast stop leaves a clean shutdown in its
// control file, an immediate one or a kill what a crash leaves.
func (a *Agent) stop(mode string) {
	if !a.running() {
		return
	}
	primary := a.node.Primary()
	switch {
	case mode == "fast" && primary:
		a.state = stateShutDown
	case mode == "fast":
		a.state = stateShutDownRec
	case primary:
		a.state = stateInProduction
	default:
		a.state = stateRecovery
	}
	a.node.Down()
	a.server.SetFault(Fault{Refuse: true})
}

// start brings the server back as what its node is.
func (a *Agent) start() {
	if a.running() {
		return
	}
	a.node.down.Store(false)
	a.server.SetFault(Fault{})
	a.state = ""
	if u := a.node.Upstream(); u != nil {
		a.node.repoint(u) // catches up with it
	}
}

// demote makes the node a standby of the server conninfo points at, as
// a rewind or a new primary_conninfo and standby.signal do.
func (a *Agent) demote(conninfo string) {
	var to *Node
	if host, port := conninfoAddr(conninfo); host != "" && a.node.resolve != nil {
		to = a.node.resolve(host, port)
	}
	a.node.mu.Lock()
	a.node.primary = false
	a.node.mu.Unlock()
	a.node.repoint(to)
	a.state = stateShutDownRec
}

// status is the data directory's state as the agent reports it.
func (a *Agent) status(dataDir string) agent.Status {
	primary := a.node.Primary()
	state := a.state // stopped through the agent
	if a.running() || state == "" {
		// Running, or crashed (Shard.Crash): the state it ran in.
		state = stateRecovery
		if primary {
			state = stateInProduction
		}
	}
	return agent.Status{DataDir: dataDir, Running: a.running(), Standby: !primary, EpochSeen: a.seen.Epoch, TermSeen: a.seen.Term,
		Control: pgctl.ControlData{ClusterState: state}}
}

func agentProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", api.ProblemContentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
}

package ha_test

import (
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/ha"
)

// cutProxy forwards TCP connections to a server until it is cut: then it
// closes every connection and refuses new ones, as a partition between
// the managers and that server would look to them. The server's own
// connections (a standby's WAL receiver) do not go through it.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.cutOff()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns = append(p.conns, c, s)
		p.wg.Add(2)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
		}
		go pipe(c, s)
		go pipe(s, c)
	}
}

// cutOff closes every forwarded connection and refuses new ones.
func (p *cutProxy) cutOff() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// TestFailover_RefusedWhileTheOldPrimaryMayKeepAMajority: the managers
// reach pg2 only through a proxy, which is cut; then the primary dies and
// its agent does not answer the fence. For all the managers can tell,
// pg1 may be serving with pg2 on the far side of a partition (its lease
// check would keep it up), so no standby is promoted and the failed
// failover says why; a manual failover is refused the same way, forced or
// not, unless an operator says the old primary is gone.
func TestFailover_RefusedWhileTheOldPrimaryMayKeepAMajority(t *testing.T) {
	e := newGroup(t, ha.Config{})
	p := e.pg.StartPrimary("pg1")
	e.nodes["pg1"] = p
	e.nodes["pg2"] = e.pg.StartStandby("pg2", p)
	e.nodes["pg3"] = e.pg.StartStandby("pg3", p)
	proxy := newCutProxy(t, net.JoinHostPort(e.nodes["pg2"].Host, strconv.Itoa(e.nodes["pg2"].Port)))
	e.mustDo("POST", "/v1/clusters", map[string]any{"name": "app", "pg_user": "postgres"}, http.StatusCreated, nil)
	var nodes []map[string]any
	for _, name := range []string{"pg1", "pg2", "pg3"} {
		s := e.nodes[name]
		role, port := "standby", s.Port
		if name == "pg1" {
			role = "primary"
		}
		if name == "pg2" {
			port = proxy.port()
		}
		nodes = append(nodes, map[string]any{"name": name, "host": s.Host, "port": port, "role": role, "agent": e.agent, "data_dir": s.DataDir})
	}
	e.mustDo("POST", "/v1/clusters/app/shards", map[string]any{"name": "s1", "nodes": nodes}, http.StatusCreated, nil)
	e.waitShardState("healthy", 20*time.Second)

	// The leader's renewals name the shard's standbys (the agent counts
	// their acknowledgements, a majority with the primary).
	e.waitFor(5*time.Second, "a renewal naming pg2 and pg3", func() bool {
		_, standbys := e.leader().HA.FencedBy(e.agent, p.DataDir)
		return strings.Join(standbys, ",") == "pg2,pg3"
	})
	release := e.holdAgent("/v1/agent/stop") // the fence gets no answer
	defer release()
	proxy.cutOff()
	p.Crash()
	refused := func() []api.Operation {
		var ops api.OperationList
		e.do("GET", "/v1/operations", nil, &ops)
		var out []api.Operation
		for _, op := range ops.Operations {
			if strings.HasSuffix(op.Kind, "failover") && op.State == "failed" && strings.Contains(op.Error, "so no standby is promoted") {
				out = append(out, op)
			}
		}
		return out
	}
	e.waitFor(30*time.Second, "a failover refused for want of a majority", func() bool { return len(refused()) > 0 })
	op := refused()[0]
	if !strings.Contains(op.Error, "only 1 of 2 standbys are seen detached") || !strings.Contains(op.Error, "[pg2]") {
		t.Errorf("refusal %q does not name the standby it could not see", op.Error)
	}
	e.holdsFor(2*time.Second, "pg1 as the declared primary", func() bool {
		sh := e.shard()
		return sh.Primary == "pg1" && sh.Epoch == 1
	})
	if rec, err := e.nodes["pg3"].InRecovery(); err != nil || !rec {
		t.Fatalf("pg3 was promoted: %v %v", rec, err)
	}

	// By hand: refused the same way, then forced.
	e.mustDo("PATCH", "/v1/clusters/app", map[string]any{"auto_failover": false}, http.StatusOK, nil)
	manual := func(force, gone bool) api.Operation {
		t.Helper()
		var ref api.OperationRef
		e.waitFor(30*time.Second, "a manual failover accepted", func() bool {
			status, _ := e.do("POST", "/v1/clusters/app/shards/s1/failover", map[string]any{"to": "pg3", "force": force, "old_primary_gone": gone}, &ref)
			return status == http.StatusAccepted // 409 while an automatic one still runs
		})
		return e.waitOperation(ref.ID, 30*time.Second)
	}
	for _, force := range []bool{false, true} { // force is about lost commits, not this
		if op := manual(force, false); op.State != "failed" || !strings.Contains(op.Error, "so no standby is promoted") {
			e.dump()
			t.Fatalf("manual failover (force %v): %s %q", force, op.State, op.Error)
		}
	}
	op = manual(false, true)
	if op.State != "succeeded" || len(op.Steps) == 0 || !strings.Contains(op.Steps[0].Detail, "forced: only 1 of 2 standbys") {
		e.dump()
		t.Fatalf("forced manual failover: %s %q %+v", op.State, op.Error, op.Steps)
	}
	e.waitFor(10*time.Second, "pg3 as primary", func() bool { return e.primary() == "pg3" })
	e.mustDo("PATCH", "/v1/clusters/app", map[string]any{"auto_failover": true}, http.StatusOK, nil)

	// pg2 runs, its agent answers, but the managers still cannot reach
	// it: a rejoin that starts it says so and fails (and so backs off),
	// rather than succeeding again at every probe.
	// Each failed rejoin is followed by the backoff (2 s here) before the
	// next one starts.
	rejoins := func() []api.Operation {
		var ops api.OperationList
		e.do("GET", "/v1/operations", nil, &ops)
		var out []api.Operation
		for _, op := range ops.Operations {
			if op.Kind == "rejoin" && op.Target == "pg2" {
				out = append(out, op)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
		return out
	}
	e.waitFor(30*time.Second, "two rejoins of pg2 that cannot reach it", func() bool {
		n := 0
		for _, op := range rejoins() {
			if op.State == "failed" && strings.Contains(op.Error, "the manager cannot connect to pg2") {
				n++
			}
		}
		return n >= 2
	})
	ops := rejoins()
	for i := 1; i < len(ops); i++ {
		if gap := ops[i].CreatedAt.Sub(ops[i-1].UpdatedAt); ops[i-1].State == "failed" && gap < 1500*time.Millisecond {
			e.dump()
			t.Fatalf("rejoin %s started %v after %s failed", ops[i].ID, gap, ops[i-1].ID)
		}
	}
}

// TestFailover_UnconfirmedFenceHoldsTheStandbysAway: the primary dies and
// its agent does not answer the fence; both standbys are seen detached,
// so the failover goes ahead, but first points them away from the old
// primary (the other standby at the node to promote), so that neither
// could give a thawed old primary the acknowledgements that keep it
// serving.
func TestFailover_UnconfirmedFenceHoldsTheStandbysAway(t *testing.T) {
	e := newEnv(t, ha.Config{})
	release := e.holdAgent("/v1/agent/stop")
	defer release()
	e.nodes["pg1"].Crash()
	next := e.waitPrimaryNot("pg1", 30*time.Second)
	other := "pg2"
	if next == "pg2" {
		other = "pg3"
	}
	var fo api.Operation
	e.waitFor(30*time.Second, "the failover to finish", func() bool {
		var ops api.OperationList
		e.do("GET", "/v1/operations", nil, &ops)
		for _, op := range ops.Operations {
			if op.Kind == "failover" && op.State == "succeeded" {
				fo = op
			}
		}
		return fo.ID != ""
	})
	if len(fo.Steps) == 0 || !strings.Contains(fo.Steps[0].Detail, "2 of 2 standbys detached") || !strings.Contains(fo.Steps[0].Detail, "pointed them away from it") {
		e.dump()
		t.Fatalf("fence step of %q: %+v", fo.ID, fo.Steps)
	}
	if n, err := e.nodes[other].QueryInt("SELECT position($1 in current_setting('primary_conninfo'))", "port="+strconv.Itoa(e.nodes[next].Port)); err != nil || n == 0 {
		t.Fatalf("%s's primary_conninfo does not name the new primary %s's port (%v)", other, next, err)
	}
	e.waitStandbyOf(other, next, 30*time.Second)
}

package faults

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clustermgr/clustermgr/internal/authtest"
	"github.com/clustermgr/clustermgr/internal/pgtest"
)

// HAProxy is Debian's haproxy in front of the shard, configured by
// clustermgr haproxy-config.
type HAProxy struct {
	WritePort, ReadPort int
	Config              string // the generated configuration
	statsPort           int
	cmd                 *exec.Cmd
	done                chan struct{}
	logPath             string
}

// StartHAProxy writes the configuration clustermgr haproxy-config prints
// for the shard (checks every interval), checks it with haproxy -c,
// starts haproxy and waits until its write port reaches the primary. It
// is stopped when the test ends.
func (c *Cluster) StartHAProxy(interval time.Duration) *HAProxy {
	c.t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		c.t.Skip("haproxy is not installed (apt-get install haproxy)")
	}
	write := consecutiveFreePorts(c.t, 3) // write, read, statistics
	var servers []string
	for _, m := range c.Managers {
		if m.Running() {
			servers = append(servers, apiURL(m))
		}
	}
	gen := exec.Command(c.bin, "haproxy-config", "f", "s1", "--server", strings.Join(servers, ","), "--bind", "127.0.0.1",
		"--write-port", strconv.Itoa(write), "--stats-port", strconv.Itoa(write+2), "--check-interval", interval.String())
	gen.Env = append(os.Environ(), "CLUSTERMGR_TOKEN="+authtest.AdminToken)
	out, err := gen.Output()
	if err != nil {
		c.t.Fatalf("clustermgr haproxy-config: %v\n%s", err, errOutput(err))
	}
	h := &HAProxy{WritePort: write, ReadPort: write + 1, statsPort: write + 2, Config: string(out), logPath: filepath.Join(c.dir, "haproxy.log"), done: make(chan struct{})}
	cfg := filepath.Join(c.dir, "haproxy.cfg")
	must(c.t, os.WriteFile(cfg, out, 0o600), "write haproxy.cfg")
	if out, err := exec.Command(bin, "-c", "-f", cfg).CombinedOutput(); err != nil {
		c.t.Fatalf("haproxy -c refuses the generated configuration: %v\n%s\n%s", err, out, h.Config)
	}
	logf, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	must(c.t, err, "haproxy log")
	defer logf.Close()
	h.cmd = exec.Command(bin, "-db", "-f", cfg)
	h.cmd.Stdout, h.cmd.Stderr = logf, logf
	must(c.t, h.cmd.Start(), "start haproxy")
	go func() {
		_ = h.cmd.Wait()
		close(h.done)
	}()
	c.t.Cleanup(h.Stop)
	// HAProxy counts a server up until its first check: clients wait
	// for every server's first check.
	if !waitFor(30*time.Second, h.checked) {
		c.t.Fatalf("haproxy did not check every server\n%s", h.Log())
	}
	if !waitFor(30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, h.WriteDSN())
		if err != nil {
			return false
		}
		defer conn.Close(context.Background())
		var inRecovery bool
		return conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery) == nil && !inRecovery
	}) {
		c.t.Fatalf("haproxy's write port does not reach the primary\n%s", h.Log())
	}
	return h
}

func errOutput(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// checked reports whether haproxy has checked every server once (from
// its statistics in CSV: no check_status left INI).
func (h *HAProxy) checked() bool {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/;csv", h.statsPort))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || len(rows) < 2 {
		return false
	}
	col := slices.Index(rows[0], "check_status")
	if col < 0 {
		return false
	}
	servers := 0
	for _, r := range rows[1:] {
		if len(r) <= col || r[1] == "FRONTEND" || r[1] == "BACKEND" || r[0] == "stats" {
			continue
		}
		servers++
		if st := strings.TrimPrefix(r[col], "* "); st == "" || st == "INI" {
			return false
		}
	}
	return servers > 0
}

// WriteDSN and ReadDSN reach the shard through HAProxy's ports (no
// target_session_attrs: a write sent to a standby fails visibly).
func (h *HAProxy) WriteDSN() string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?connect_timeout=1", pgPassword, h.WritePort)
}

// ReadDSN is the read port's connection string.
func (h *HAProxy) ReadDSN() string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?connect_timeout=1", pgPassword, h.ReadPort)
}

// Log returns haproxy's log.
func (h *HAProxy) Log() string {
	data, _ := os.ReadFile(h.logPath)
	return string(data)
}

// Stop stops haproxy and waits for it.
func (h *HAProxy) Stop() {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	_ = h.cmd.Process.Signal(syscall.SIGKILL)
	<-h.done
	h.cmd = nil
}

// consecutiveFreePorts returns the first of n consecutive free loopback
// ports (HAProxy's write and read ports), handed out by pgtest.FreePorts
// (whose cursor walks the range: its ports are usually consecutive).
func consecutiveFreePorts(t testing.TB, n int) int {
	t.Helper()
	for range 100 {
		ports := pgtest.FreePorts(t, n)
		if ports[n-1]-ports[0] == n-1 {
			return ports[0]
		}
	}
	t.Fatal("no consecutive free ports")
	return 0
}

// Read is one read through a port: when, which server, whether it was
// in recovery.
type Read struct {
	At         time.Time
	Port       int
	InRecovery bool
}

// Reader connects through dsn for every read (HAProxy balances
// connections, not queries) and records which server answered.
type Reader struct {
	mu     sync.Mutex
	reads  []Read
	cancel context.CancelFunc
	done   chan struct{}
}

// StartReader starts reading through dsn every 20 ms until Stop.
func (c *Cluster) StartReader(dsn string) *Reader {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Reader{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
			conn, err := pgx.Connect(cctx, dsn)
			if err == nil {
				var rd Read
				if err := conn.QueryRow(cctx, "SELECT inet_server_port(), pg_is_in_recovery()").Scan(&rd.Port, &rd.InRecovery); err == nil {
					rd.At = time.Now()
					r.mu.Lock()
					r.reads = append(r.reads, rd)
					r.mu.Unlock()
				}
				_ = conn.Close(context.Background())
			}
			ccancel()
			sleep(ctx, 20*time.Millisecond)
		}
	}()
	c.t.Cleanup(r.Stop)
	return r
}

// Stop ends the reader and waits for it.
func (r *Reader) Stop() {
	r.cancel()
	<-r.done
}

// Reads returns the reads so far.
func (r *Reader) Reads() []Read {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Read(nil), r.reads...)
}

// PrimaryChecks polls every node's agent /primary check every 20 ms and
// counts the rounds in which more than one answered 200.
type PrimaryChecks struct {
	mu       sync.Mutex
	rounds   []time.Time // when each round ended
	two      int
	twoWhich []string
	cancel   context.CancelFunc
	done     chan struct{}
}

// StartPrimaryChecks starts polling the nodes' /primary checks.
func (c *Cluster) StartPrimaryChecks() *PrimaryChecks {
	ctx, cancel := context.WithCancel(context.Background())
	p := &PrimaryChecks{cancel: cancel, done: make(chan struct{})}
	hc := &http.Client{Timeout: time.Second}
	nodes := append([]*Node(nil), c.Nodes...)
	go func() {
		defer close(p.done)
		for ctx.Err() == nil {
			var ok []string
			for _, n := range nodes {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.Health+"/primary?node=f.s1."+n.Name, nil)
				resp, err := hc.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok = append(ok, n.Name)
				}
			}
			p.mu.Lock()
			p.rounds = append(p.rounds, time.Now())
			if len(ok) > 1 {
				p.two++
				p.twoWhich = append(p.twoWhich, strings.Join(ok, "+"))
			}
			p.mu.Unlock()
			sleep(ctx, 20*time.Millisecond)
		}
	}()
	c.t.Cleanup(p.Stop)
	return p
}

// Stop ends the polling and waits for it.
func (p *PrimaryChecks) Stop() {
	p.cancel()
	<-p.done
}

// Result returns when each round ended and the rounds with two
// primaries.
func (p *PrimaryChecks) Result() (rounds []time.Time, two int, which []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.rounds...), p.two, append([]string(nil), p.twoWhich...)
}

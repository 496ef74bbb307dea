package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
)

// proc is a child process: a manager replica or a simulator.
type proc struct {
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser // a simulator's stdin: closing it ends it
}

func (p *proc) stop() {
	if p.in != nil {
		_ = p.in.Close()
	} else {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// sim is a simulator process and the shards it serves.
type sim struct {
	proc
	control string
	shards  []simShard
}

// startSim starts this program as a simulator of shards shards numbered
// from first, at nice value nice, with agents when agents is set.
func startSim(first, shards, nice int, agents bool) (*sim, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{self, "-serve-fleet", "-first", strconv.Itoa(first), "-shards", strconv.Itoa(shards)}
	if agents {
		args = append(args, "-agent-token", agentToken)
	}
	if nice != 0 {
		// nice(1) execs the simulator: every thread is born at the value.
		args = append([]string{"nice", "-n", strconv.Itoa(nice)}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &sim{proc: proc{name: fmt.Sprintf("sim-s%d", first), cmd: cmd, in: in}}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "control ") {
		s.stop()
		return nil, fmt.Errorf("simulator of s%d..: %q %v", first, line, err)
	}
	s.control = "http://" + strings.TrimSpace(strings.TrimPrefix(line, "control "))
	if err := getJSON(http.DefaultClient, s.control+"/fleet", "", &s.shards); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// agentToken is the simulated agents' token, in the replicas'
// server.agent_token.
const agentToken = "benchscale-agent-token-0123456789"

// group is a 3-replica manager group of clustermgr server processes.
type group struct {
	dir   string
	reps  []*proc
	urls  []string
	token string
	http  *http.Client
}

func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startGroup starts three replicas of bin in dir with the default
// settings but for the probe interval and the log level, and waits for
// the admin token the first leader writes.
func startGroup(bin, dir string, probe time.Duration, logLevel string, raftTimeout time.Duration) (*group, error) {
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	g := &group{dir: dir, http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	var peers []string
	for i := range 3 {
		peers = append(peers, fmt.Sprintf("m%d=127.0.0.1:%d", i+1, ports[i]))
	}
	tokenFile, keyFile := filepath.Join(dir, "admin.token"), filepath.Join(dir, "secret.key")
	for i := range 3 {
		id := fmt.Sprintf("m%d", i+1)
		cnf := fmt.Sprintf(`[server]
node_id = %q
data_dir = %q
raft_addr = "127.0.0.1:%d"
api_addr = "127.0.0.1:%d"
peers = %q
agent_token = %q
admin_token_file = %q
secret_key_file = %q
[ha]
probe_interval = %q
[log]
level = %q
%s`, id, filepath.Join(dir, id), ports[i], ports[3+i], strings.Join(peers, ","), agentToken, tokenFile, keyFile, probe.String(), logLevel, raftTiming(raftTimeout))
		path := filepath.Join(dir, id+".cnf")
		if err := os.WriteFile(path, []byte(cnf), 0o600); err != nil {
			return nil, err
		}
		logf, err := os.Create(filepath.Join(dir, id+".log"))
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "server", "--config", path)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // gone with the driver
		if extra := os.Getenv("BENCHSCALE_SERVER_ENV"); extra != "" {
			cmd.Env = append(os.Environ(), extra) // GODEBUG=gctrace=1, say
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		logf.Close()
		g.reps = append(g.reps, &proc{name: id, cmd: cmd})
		g.urls = append(g.urls, fmt.Sprintf("http://127.0.0.1:%d", ports[3+i]))
		if i == 0 {
			// The key file is made by the first replica that starts:
			// the others read it.
			if !waitUntil(20*time.Second, func() bool { _, err := os.Stat(keyFile); return err == nil }) {
				g.stop()
				return nil, fmt.Errorf("m1 made no secret key file (see %s)", filepath.Join(dir, "m1.log"))
			}
		}
	}
	if !waitUntil(60*time.Second, func() bool {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return false
		}
		g.token = strings.TrimSpace(string(b))
		var m api.Manager
		return g.get("/v1/manager", &m) == nil && m.LeaderID != ""
	}) {
		g.stop()
		return nil, fmt.Errorf("no leader with an admin token (see the logs in %s)", dir)
	}
	return g, nil
}

func (g *group) stop() {
	for _, p := range g.reps {
		p.stop()
	}
}

// leader returns the index of the leading replica (-1: none known).
func (g *group) leader() int {
	for i, u := range g.urls {
		var m api.Manager
		if getJSON(g.http, u+"/v1/manager", g.token, &m) == nil && m.State == "Leader" {
			return i
		}
	}
	return -1
}

// get reads path from the first replica that answers.
func (g *group) get(path string, out any) error {
	var err error
	for _, u := range g.urls {
		if err = getJSON(g.http, u+path, g.token, out); err == nil {
			return nil
		}
	}
	return err
}

// post sends body to path (any replica: followers forward) and wants
// status.
func (g *group) post(path string, body any, want int) error {
	b, _ := json.Marshal(body)
	var last error
	for _, u := range g.urls {
		req, _ := http.NewRequest(http.MethodPost, u+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+g.token)
		resp, err := g.http.Do(req)
		if err != nil {
			last = err
			continue
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == want {
			return nil
		}
		last = fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, data)
		if resp.StatusCode != http.StatusServiceUnavailable {
			return last
		}
	}
	return last
}

// postRetry is post, tried again for up to a minute while no leader
// answers (an election), as a client of the group does.
func (g *group) postRetry(path string, body any, want int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		err := g.post(path, body, want)
		if err == nil || !strings.Contains(err.Error(), ": 503 ") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func getJSON(c *http.Client, url, token string, out any) error {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, data)
	}
	return json.Unmarshal(data, out)
}

func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// raftName names the Raft timeout of d ("default" for 0).
func raftName(d time.Duration) string {
	if d <= 0 {
		return "default"
	}
	return d.String()
}

// raftTiming is the [raft] section of a heartbeat and election timeout of
// d (and a leader lease of half of it); "" keeps the defaults.
func raftTiming(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return fmt.Sprintf("[raft]\nheartbeat_timeout = %q\nelection_timeout = %q\nleader_lease_timeout = %q\n", d.String(), d.String(), (d / 2).String())
}

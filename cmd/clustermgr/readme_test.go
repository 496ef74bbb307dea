package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/api"
)

// quickStartBlock returns the command lines of the README's Quick start
// block that follows "in another terminal:".
func quickStartBlock(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i := strings.Index(text, "in another terminal:")
	if i < 0 {
		t.Fatal(`README: no "in another terminal:" in the Quick start`)
	}
	start := strings.Index(text[i:], "```sh\n")
	end := strings.Index(text[i+start+6:], "```")
	if start < 0 || end < 0 {
		t.Fatal("README: no sh block after the Quick start's text")
	}
	var lines []string
	for _, l := range strings.Split(text[i+start+6:i+start+6+end], "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// consecutivePorts returns n free consecutive ports (make dev's flags name
// the first of each range).
func consecutivePorts(t *testing.T, n int) []int {
	t.Helper()
	for range 100 {
		p := pgtest.FreePorts(t, n)
		if p[n-1]-p[0] == n-1 {
			return p
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return nil
}

// TestReadme_QuickStart runs the README's Quick start, line for line,
// against `clustermgr dev` (what make dev runs), with the test's ports and
// temporary directory in place of the README's, and checks that each line
// does what its comment says; then Ctrl-C ends dev with status 0 and a
// one-line goodbye.
func TestReadme_QuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs clustermgr dev with a real shard")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	lines := quickStartBlock(t)
	bin := buildBinary(t)
	tmp, err := os.MkdirTemp("", "readme-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o755); err != nil { // PostgreSQL's user reaches its data below
		t.Fatal(err)
	}
	p := consecutivePorts(t, 11)
	base := fmt.Sprintf("http://127.0.0.1:%d", p[3])
	dev := exec.Command(bin, "dev", "--raft-port", fmt.Sprint(p[0]), "--api-port", fmt.Sprint(p[3]), "--agent-port", fmt.Sprint(p[6]), "--pg-port", fmt.Sprint(p[7]), "--health-port", fmt.Sprint(p[10]))
	dev.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stderr bytes.Buffer
	dev.Stderr = &stderr
	stdout, err := dev.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	outLines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			outLines <- sc.Text()
		}
		close(outLines)
		exited <- dev.Wait()
	}()
	t.Cleanup(func() {
		_ = dev.Process.Kill()
		for range outLines {
		}
	})
	var out []string
	token := ""
	deadline := time.After(3 * time.Minute)
	for !strings.Contains(strings.Join(out, "\n"), "Ctrl-C stops everything") {
		select {
		case l, ok := <-outLines:
			if !ok {
				t.Fatalf("clustermgr dev ended: %s\n%s", strings.Join(out, "\n"), stderr.String())
			}
			out = append(out, l)
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "export CLUSTERMGR_TOKEN="); ok {
				token = v
			}
		case <-deadline:
			t.Fatalf("clustermgr dev printed no banner in 3 minutes: %s\n%s", strings.Join(out, "\n"), stderr.String())
		}
	}
	banner := strings.Join(out, "\n")
	if token == "" || !strings.Contains(banner, "A PostgreSQL shard demo/s1 runs") {
		t.Fatalf("banner without a token or a shard:\n%s\n%s", banner, stderr.String())
	}
	if !strings.Contains(banner, "/pg2/data/postmaster.pid)") {
		t.Errorf("the banner does not suggest crashing pg2, the primary after its switchover:\n%s", banner)
	}

	// The dashboard the README points at.
	if resp, err := http.Get(base + "/"); err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET / of make dev: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	var setup []string
	for _, line := range lines {
		cmd, comment, _ := strings.Cut(line, " #")
		cmd = strings.TrimSpace(cmd)
		cmd = strings.ReplaceAll(cmd, "http://127.0.0.1:8001", base)
		cmd = strings.ReplaceAll(cmd, "/tmp/clustermgr-dev-*", tmp+"/clustermgr-dev-*")
		cmd = strings.ReplaceAll(cmd, "cmt_...", token)
		if strings.HasPrefix(cmd, "export ") || strings.HasPrefix(cmd, "auth=") {
			setup = append(setup, cmd)
			continue
		}
		check := quickStartCheck(t, cmd, strings.TrimSpace(comment))
		script := strings.Join(append(append([]string{}, setup...), cmd), "\n")
		var last string
		ok := false
		for end := time.Now().Add(90 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
			o, err := exec.Command("bash", "-c", script).CombinedOutput()
			last = string(o)
			if err == nil && check(last) {
				ok = true
				break
			}
			if err != nil {
				last += " (" + err.Error() + ")"
			}
			if strings.HasPrefix(cmd, "kill") {
				break // a crash happens once
			}
		}
		if !ok {
			t.Fatalf("README line %q does not do what it says (%s): %s\ndev log: %.3000s", line, comment, summarize(last), stderr.String())
		}
		t.Logf("ok: %s", line)
	}

	// Ctrl-C: status 0 and one line of goodbye, no error logged.
	if err := dev.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var after []string
	for l := range outLines {
		after = append(after, l)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("clustermgr dev after Ctrl-C: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("clustermgr dev did not stop within 60 s of Ctrl-C")
	}
	if len(after) != 1 || !strings.HasPrefix(after[0], "clustermgr dev: stopped") {
		t.Errorf("after Ctrl-C dev printed %q, want one goodbye line", after)
	}
	if n := strings.Count(stderr.String(), "level=ERROR"); n > 0 {
		t.Errorf("dev logged %d errors:\n%.3000s", n, stderr.String())
	}
}

// quickStartCheck returns what a Quick start line's output must show, by
// what the line is; a line the test does not know fails it.
func quickStartCheck(t *testing.T, cmd, comment string) func(string) bool {
	t.Helper()
	switch {
	case strings.Contains(cmd, `/v1/clusters/demo/shards/s1 | grep -o '"state"`):
		// the shard healthy again: both standbys stream from the new primary
		return func(o string) bool { return strings.TrimSpace(o) == `"state":"healthy"` }
	case strings.HasSuffix(cmd, "/v1/clusters/demo/shards/s1") && !strings.Contains(cmd, "-XPOST"):
		// "health, LSNs, lag, last decision"
		return func(o string) bool {
			var sh api.Shard
			if json.Unmarshal([]byte(o), &sh) != nil || sh.State != "healthy" || len(sh.Nodes) != 3 || sh.LastDecision == nil {
				return false
			}
			for _, n := range sh.Nodes {
				if n.Status == nil || n.Status.Health != "healthy" || (n.Status.CurrentLSN == "" && n.Status.ReplayLSN == "") {
					return false
				}
			}
			return true
		}
	case strings.Contains(cmd, "/switchover"):
		return func(o string) bool { return strings.Contains(o, `"kind":"switchover"`) }
	case strings.HasSuffix(cmd, "/primary"):
		want := regexp.MustCompile(`\{"node":"(pg\d)"`).FindStringSubmatch(comment)
		if want == nil {
			t.Fatalf("the primary line's comment %q names no node", comment)
		}
		return func(o string) bool { return strings.Contains(o, `"node":"`+want[1]+`"`) }
	case strings.HasPrefix(cmd, "kill -9"):
		return func(string) bool { return true }
	case strings.Contains(cmd, "/v1/events?cluster=demo"):
		// "the failover, the rewind and rejoin of pg2"
		return func(o string) bool {
			var l api.EventList
			if json.Unmarshal([]byte(o), &l) != nil {
				return false
			}
			var promoted, rejoined bool
			for _, e := range l.Events {
				promoted = promoted || (e.Kind == "promotion" && e.Node != "pg2" && strings.Contains(e.Message, "failover"))
				rejoined = rejoined || (e.Node == "pg2" && strings.Contains(e.Message, "rejoin") && strings.Contains(e.Message, "succeeded"))
			}
			return promoted && rejoined
		}
	case strings.HasSuffix(cmd, "/v1/clusters") && !strings.Contains(cmd, "$auth"):
		return func(o string) bool { return strings.Contains(o, `"status":401`) }
	}
	t.Fatalf("a Quick start line this test does not know: %q; teach quickStartCheck what it must show", cmd)
	return nil
}

// summarize shortens an answer for a failure message: an event list to a
// line per event.
func summarize(o string) string {
	var l api.EventList
	if json.Unmarshal([]byte(o), &l) != nil || len(l.Events) == 0 {
		if len(o) > 2000 {
			o = o[:2000]
		}
		return o
	}
	var b strings.Builder
	for _, e := range l.Events {
		fmt.Fprintf(&b, "\n  %s %s %s: %s", e.At.Format("15:04:05.000"), e.Kind, e.Node, e.Message)
	}
	return b.String()
}

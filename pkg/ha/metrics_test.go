package ha_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/authtest"
	"github.com/clustermgr/clustermgr/pkg/ha"
)

// scrape GETs url/metrics with token ("" sends none).
func (e *env) scrape(url, token string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.api.Do(req)
	if err != nil {
		e.t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// sample returns the value of the series line that starts with series.
func sample(text, series string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// TestMetrics_LiveGroupPassesPromtool scrapes every replica of a live
// group with a real shard: promtool accepts the output, the series say
// what the API says (the primary, the shard's and nodes' states, one
// leader), and the instruments have counted probes, commands and
// requests. A scrape without a token is refused.
func TestMetrics_LiveGroupPassesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed (apt-get install prometheus; .ci/run installs it)")
	}
	e := newEnv(t, ha.Config{})
	e.waitShardState("healthy", 30*time.Second)
	e.waitFor(10*time.Second, "every replica to see every node healthy", func() bool {
		for _, r := range e.reps {
			_, text := e.scrape(r.URL, authtest.AdminToken)
			for _, n := range []string{"pg1", "pg2", "pg3"} {
				if v, _ := sample(text, `clustermgr_node_health{cluster="app",health="healthy",node="`+n+`",shard="s1"}`); v != 1 {
					return false
				}
			}
		}
		return true
	})
	leaders := 0
	for _, r := range e.reps {
		if status, body := e.scrape(r.URL, ""); status != http.StatusUnauthorized {
			t.Fatalf("%s: scrape without a token: %d %s", r.Store.ID(), status, body)
		}
		status, text := e.scrape(r.URL, authtest.AdminToken)
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s", r.Store.ID(), status, text)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Errorf("%s: promtool check metrics: %v\n%s", r.Store.ID(), err, out.String())
		}
		for series, want := range map[string]float64{
			`clustermgr_node_is_primary{cluster="app",node="pg1",shard="s1"}`:            1,
			`clustermgr_node_is_primary{cluster="app",node="pg2",shard="s1"}`:            0,
			`clustermgr_shard_state{cluster="app",shard="s1",state="healthy"}`:           1,
			`clustermgr_shard_state{cluster="app",shard="s1",state="no-primary"}`:        0,
			`clustermgr_node_streaming{cluster="app",node="pg2",shard="s1"}`:             1,
			`clustermgr_node_timeline{cluster="app",node="pg3",shard="s1"}`:              1,
			`clustermgr_node_replication_lag_bytes{cluster="app",node="pg1",shard="s1"}`: 0,
			`clustermgr_raft_voters`:       3,
			`clustermgr_raft_leader_known`: 1,
		} {
			if v, ok := sample(text, series); !ok || v != want {
				t.Errorf("%s: %s = %v (found %v), want %v", r.Store.ID(), series, v, ok, want)
			}
		}
		for _, series := range []string{`clustermgr_probe_duration_seconds_count{outcome="ok"}`, `clustermgr_raft_term`,
			`clustermgr_raft_applied_index`, `process_resident_memory_bytes`, `go_goroutines`} {
			if v, ok := sample(text, series); !ok || v <= 0 {
				t.Errorf("%s: %s = %v (found %v), want > 0", r.Store.ID(), series, v, ok)
			}
		}
		if v, ok := sample(text, `clustermgr_node_replication_lag_seconds{cluster="app",node="pg2",shard="s1"}`); !ok || v < 0 || v > 30 {
			t.Errorf("%s: pg2's replay lag %v (found %v)", r.Store.ID(), v, ok)
		}
		if v, _ := sample(text, `clustermgr_api_rejected_auth_total`); v < 1 {
			t.Errorf("%s: the refused scrape was not counted: %v", r.Store.ID(), v)
		}
		if v, _ := sample(text, `clustermgr_raft_is_leader`); v == 1 {
			leaders++
			if v, _ := sample(text, `clustermgr_raft_apply_duration_seconds_count{outcome="ok"}`); v < 1 && r.Store.IsLeader() {
				t.Errorf("%s: the leader counted no applied command", r.Store.ID())
			}
		}
		// Requests are counted by route pattern, never by path.
		if v, _ := sample(text, `clustermgr_api_requests_total{code="200",method="GET",route="/metrics"}`); v < 1 {
			t.Errorf("%s: the earlier scrapes were not counted", r.Store.ID())
		}
		if regexp.MustCompile(`route="/v1/clusters/app`).MatchString(text) {
			t.Errorf("%s: a request path became a label value", r.Store.ID())
		}
	}
	if leaders != 1 {
		t.Fatalf("%d replicas say they lead", leaders)
	}

	// A switchover is counted and its gap observed by the replica that
	// ran it.
	ref := e.switchover("pg2")
	if op := e.waitOperation(ref.ID, 60*time.Second); op.State != "succeeded" {
		t.Fatalf("switchover %+v", op)
	}
	e.waitFor(10*time.Second, "the switchover counted by the leader", func() bool {
		for _, r := range e.reps {
			_, text := e.scrape(r.URL, authtest.AdminToken)
			ended, _ := sample(text, `clustermgr_operations_ended_total{kind="switchover",state="succeeded"}`)
			gaps, _ := sample(text, `clustermgr_switchover_write_gap_seconds_count`)
			if ended == 1 && gaps == 1 {
				return true
			}
		}
		return false
	})
}

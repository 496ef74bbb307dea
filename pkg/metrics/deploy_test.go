package metrics_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/metrics"
)

const deploy = "../../deploy"

func promtool(t *testing.T, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed (apt-get install prometheus; .ci/run installs it)")
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// exposed returns the names of every series family a replica with a full
// picture exposes (histograms with their _bucket, _sum and _count).
func exposed(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New(func() metrics.Snapshot {
		return metrics.Snapshot{
			Raft: metrics.Raft{State: "Leader", Term: 2, LastIndex: 10, Commit: 10, Applied: 10, Voters: 3, LeaderKnown: true},
			Shards: []metrics.Shard{{Cluster: "app", Name: "s1", State: "healthy", Epoch: 1, SyncStandbys: 1, Synchronous: true,
				LastBackup: time.Now(), BackupInterval: time.Hour,
				Nodes: []metrics.Node{{Name: "pg1", Role: "primary", Health: "healthy", Timeline: 1}, {Name: "pg2", Role: "standby", Health: "healthy", Timeline: 1, Streaming: true}}}},
			Operations: []metrics.Operation{{Kind: "failover", State: "succeeded", Count: 1}},
		}
	})
	m.ObserveRequest("/v1/clusters", "GET", 200, time.Millisecond)
	m.ObserveProbe(time.Millisecond, true)
	m.ProbesSkipped("queued", 1)
	m.ObserveApply(time.Millisecond, "ok")
	m.LeadershipGained()
	m.RejectedAuth()
	now := time.Now()
	m.OperationEnded(metrics.OperationDone{Kind: "switchover", State: "succeeded", Created: now,
		Steps: map[string]time.Time{"checkpoint": now, "promote": now.Add(time.Second)}})
	var text strings.Builder
	if err := m.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(text.String(), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			names[f[2]] = true
			if f[3] == "histogram" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					names[f[2]+s] = true
				}
			}
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\bclustermgr_[a-z0-9_]+`)

// checkNames fails for every clustermgr_ name in text that no replica
// exposes.
func checkNames(t *testing.T, what, text string, names map[string]bool) int {
	t.Helper()
	found := metricName.FindAllString(text, -1)
	for _, n := range found {
		if !names[n] {
			t.Errorf("%s uses %s, which no replica exposes", what, n)
		}
	}
	return len(found)
}

// TestAlertRules: promtool accepts the shipped rules and their unit
// tests pass, and every metric they use exists.
func TestAlertRules(t *testing.T) {
	rules := filepath.Join(deploy, "prometheus", "clustermgr-alerts.yml")
	promtool(t, "check", "rules", rules)
	promtool(t, "test", "rules", filepath.Join(deploy, "prometheus", "clustermgr-alerts_test.yml"))
	text, err := os.ReadFile(rules)
	if err != nil {
		t.Fatal(err)
	}
	if n := checkNames(t, rules, string(text), exposed(t)); n < 5 {
		t.Fatalf("only %d metric names found in the rules", n)
	}
}

// TestGrafanaDashboard: the dashboard is valid JSON, every panel's query
// is PromQL that promtool accepts, and every metric it names exists.
func TestGrafanaDashboard(t *testing.T) {
	path := filepath.Join(deploy, "grafana", "clustermgr.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	names := exposed(t)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	queries := 0
	for i, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for j, q := range p.Targets {
			queries++
			checkNames(t, fmt.Sprintf("panel %q", p.Title), q.Expr, names)
			expr, _ := json.Marshal(q.Expr) // a JSON string is a YAML string
			fmt.Fprintf(&rules, "      - record: dashboard:panel%d_%d\n        expr: %s\n", i, j, expr)
		}
	}
	if queries < 10 {
		t.Fatalf("only %d queries in the dashboard", queries)
	}
	file := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	promtool(t, "check", "rules", file)
}

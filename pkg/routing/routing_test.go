package routing

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clustermgr/clustermgr/pkg/api"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func shard(cluster, name string, nodes ...api.Node) api.Shard {
	return api.Shard{Cluster: cluster, Name: name, Nodes: nodes}
}

func node(name, host string, port int, role, agent string) api.Node {
	return api.Node{Name: name, Host: host, Port: port, Role: role, Agent: agent}
}

func TestConnection(t *testing.T) {
	nodes := []api.Node{
		node("pg1", "10.0.0.1", 5432, "standby", "h1"),
		node("pg2", "10.0.0.2", 5433, "primary", "h2"),
		node("pg3", "fd00::3", 5432, "standby", "h3"),
	}
	got := Connection("app", "s1", "app user", nodes)
	want := api.Connection{
		Cluster:   "app",
		Shard:     "s1",
		ReadWrite: "postgresql://app%20user@10.0.0.2:5433,10.0.0.1:5432,[fd00::3]:5432/postgres?connect_timeout=2&target_session_attrs=read-write",
		ReadOnly:  "postgresql://app%20user@10.0.0.1:5432,[fd00::3]:5432,10.0.0.2:5433/postgres?connect_timeout=2&target_session_attrs=prefer-standby",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("connection strings (-want +got):\n%s", diff)
	}
	if got := Connection("app", "s1", "", nodes[:1]); !strings.HasPrefix(got.ReadWrite, "postgresql://postgres@10.0.0.1:5432/") {
		t.Errorf("no user: %s, want postgres", got.ReadWrite)
	}
}

// TestHAProxy compares the whole configuration with a golden file and,
// where haproxy is installed, has haproxy -c check it.
func TestHAProxy(t *testing.T) {
	health := map[string]string{"h1": "http://10.0.0.1:8008", "h2": "http://10.0.0.2:8008/", "h3": "http://[fd00::3]:8008"}
	shards := []HAProxyShard{
		{Shard: shard("app", "s1", node("pg1", "10.0.0.1", 5432, "primary", "h1"), node("pg2", "10.0.0.2", 5432, "standby", "h2"), node("pg3", "fd00::3", 5432, "standby", "h3")), Health: health},
		{Shard: shard("app", "s2", node("pg4", "10.0.0.1", 5433, "primary", "h1"), node("pg5", "10.0.0.2", 5433, "standby", "h2")), Health: health},
	}
	got, err := HAProxy(shards, HAProxyOptions{Bind: "127.0.0.1", WritePort: 5000, MaxLag: "16MB", Interval: time.Second, StatsPort: 7000})
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "haproxy.cfg")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("configuration (-want +got; go test ./pkg/routing -update rewrites it):\n%s", diff)
	}
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Log("haproxy is not installed: the configuration is not checked by haproxy -c")
		return
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(got), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
}

func TestHAProxyRefuses(t *testing.T) {
	ok := map[string]string{"h1": "http://10.0.0.1:8008"}
	s := shard("app", "s1", node("pg1", "10.0.0.1", 5432, "primary", "h1"))
	for _, c := range []struct {
		name   string
		shards []HAProxyShard
		opts   HAProxyOptions
		want   string
	}{
		{"no agent", []HAProxyShard{{Shard: shard("app", "s1", node("pg1", "h", 1, "primary", "")), Health: ok}}, HAProxyOptions{WritePort: 5000},
			"node app/s1/pg1 has no agent: its role cannot be checked"},
		{"no health URL", []HAProxyShard{{Shard: s, Health: map[string]string{"h1": ""}}}, HAProxyOptions{WritePort: 5000},
			"agent h1 of node app/s1/pg1 serves no health checks: register its --health-addr with clustermgr agents add h1 URL --health-url http://HOST:8008"},
		{"https health URL", []HAProxyShard{{Shard: s, Health: map[string]string{"h1": "https://x:1"}}}, HAProxyOptions{WritePort: 5000},
			`agent h1: health URL "https://x:1" is not http://host:port`},
		{"port range", []HAProxyShard{{Shard: s, Health: ok}}, HAProxyOptions{WritePort: 65535},
			"write port 65535 leaves no room for 1 shards"},
		{"bad lag", []HAProxyShard{{Shard: s, Health: ok}}, HAProxyOptions{WritePort: 5000, MaxLag: "1 MB"},
			`max lag "1 MB" is not a byte count or a duration`},
		{"fast checks", []HAProxyShard{{Shard: s, Health: ok}}, HAProxyOptions{WritePort: 5000, Interval: time.Millisecond},
			"check interval 1ms is below 100ms"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := HAProxy(c.shards, c.opts)
			if err == nil || err.Error() != c.want {
				t.Errorf("error %v, want %s", err, c.want)
			}
		})
	}
}

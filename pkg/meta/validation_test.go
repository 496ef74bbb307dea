package meta

import (
	"strings"
	"testing"
	"time"
)

func TestValidateName(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{"a", true}, {"orders", true}, {"s-1", true}, {"0", true}, {strings.Repeat("a", 63), true},
		{"", false}, {strings.Repeat("a", 64), false}, {"Orders", false}, {"-a", false}, {"a-", false},
		{"a_b", false}, {"a.b", false}, {"a b", false}, {"ünï", false},
	}
	for _, tc := range cases {
		err := ValidateName("name", tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && (KindOf(err) != KindInvalid || !strings.HasPrefix(err.Error(), "name: ")) {
			t.Errorf("ValidateName(%q) error %v does not name the field", tc.in, err)
		}
	}
}

func TestValidatePortAndRole(t *testing.T) {
	for _, tc := range []struct {
		port int
		ok   bool
	}{{0, false}, {1, true}, {5432, true}, {65535, true}, {65536, false}, {-1, false}} {
		if err := ValidatePort("port", tc.port); (err == nil) != tc.ok {
			t.Errorf("ValidatePort(%d) = %v", tc.port, err)
		}
	}
	for _, tc := range []struct {
		role Role
		ok   bool
	}{{RolePrimary, true}, {RoleStandby, true}, {"", false}, {"leader", false}, {"Primary", false}} {
		if err := ValidateRole("role", tc.role); (err == nil) != tc.ok {
			t.Errorf("ValidateRole(%q) = %v", tc.role, err)
		}
	}
}

func TestValidateNode(t *testing.T) {
	good := func() *Node {
		return &Node{Name: "pg1", Host: "db1.example.com", Port: 5432, Role: RoleStandby, Agent: "db1", DataDir: "/var/lib/pg", Tags: []string{TagNoFailover}, Priority: 10}
	}
	if err := ValidateNode("nodes[0]", good()); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		mutate func(n *Node)
		field  string
	}{
		{"no host", func(n *Node) { n.Host = "" }, "nodes[0].host"},
		{"bad host", func(n *Node) { n.Host = "db 1" }, "nodes[0].host"},
		{"ipv6 host ok", func(n *Node) { n.Host = "::1" }, ""},
		{"ipv4 host ok", func(n *Node) { n.Host = "10.0.0.1" }, ""},
		{"bad name", func(n *Node) { n.Name = "PG" }, "nodes[0].name"},
		{"bad port", func(n *Node) { n.Port = 70000 }, "nodes[0].port"},
		{"bad role", func(n *Node) { n.Role = "replica" }, "nodes[0].role"},
		{"agent not a name", func(n *Node) { n.Agent = "http://db1:9000" }, "nodes[0].agent"},
		{"relative data dir", func(n *Node) { n.DataDir = "data" }, "nodes[0].data_dir"},
		{"data dir with a trailing slash", func(n *Node) { n.DataDir = "/var/lib/pg/" }, "nodes[0].data_dir"},
		{"data dir with dot-dot", func(n *Node) { n.DataDir = "/var/lib/x/../pg" }, "nodes[0].data_dir"},
		{"data dir with a double slash", func(n *Node) { n.DataDir = "/var//lib/pg" }, "nodes[0].data_dir"},
		{"negative priority", func(n *Node) { n.Priority = -1 }, "nodes[0].priority"},
		{"priority too high", func(n *Node) { n.Priority = 1001 }, "nodes[0].priority"},
		{"unknown tag", func(n *Node) { n.Tags = []string{"fast"} }, "nodes[0].tags[0]"},
		{"duplicate tag", func(n *Node) { n.Tags = []string{TagNoFailover, TagNoFailover} }, "nodes[0].tags[1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := good()
			tc.mutate(n)
			err := ValidateNode("nodes[0]", n)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *Error
			if err == nil || !asError(err, &e) || e.Field != tc.field {
				t.Fatalf("error %v, want field %s", err, tc.field)
			}
		})
	}
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}

func TestParsePeers(t *testing.T) {
	cases := []struct {
		in   string
		want int
		err  string
	}{
		{"m1=127.0.0.1:7001,m2=127.0.0.1:7002, m3=127.0.0.1:7003", 3, ""},
		{"", 0, ""},
		{"m1=127.0.0.1:7001,", 1, ""},
		{"m1", 0, "not id=host:port"},
		{"=127.0.0.1:1", 0, "not id=host:port"},
		{"m1=a:1,m1=b:2", 0, "appears twice"},
	}
	for _, tc := range cases {
		got, err := ParsePeers(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePeers(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != tc.want {
			t.Errorf("ParsePeers(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestParseConsistency(t *testing.T) {
	for in, want := range map[string]Consistency{"": LeaderRead, "leader": LeaderRead, "stale": Stale, "none": Stale, "linearizable": Linearizable, "strong": Linearizable} {
		if got, err := ParseConsistency(in); err != nil || got != want {
			t.Errorf("ParseConsistency(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseConsistency("eventual"); KindOf(err) != KindInvalid {
		t.Errorf("eventual: %v", err)
	}
}

func TestScheduleInterval(t *testing.T) {
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		expr string
		want time.Duration
	}{
		{"@every 1h", time.Hour},
		{"0 3 * * *", 24 * time.Hour},
		{"0 3 * * 1-5", 72 * time.Hour}, // Friday to Monday
		{"not cron", 0},
		{"0 0 30 2 *", 0}, // never fires
	} {
		if got := ScheduleInterval(c.expr, at); got != c.want {
			t.Errorf("%q: %v, want %v", c.expr, got, c.want)
		}
	}
}

package action

import (
	"testing"

	"github.com/clustermgr/clustermgr/pkg/meta"
)

func TestQuoteLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "''",
		"host=a port=1":        "'host=a port=1'",
		"it's":                 "'it''s'",
		`FIRST 1 ("pg2")`:      `'FIRST 1 ("pg2")'`,
		"a'; DROP TABLE t; --": "'a''; DROP TABLE t; --'",
	} {
		if got := quoteLiteral(in); got != want {
			t.Errorf("quoteLiteral(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestConnInfo(t *testing.T) {
	p := meta.Node{Name: "pg1", Host: "10.0.0.1", Port: 5432}
	cases := []struct {
		settings meta.ClusterSettings
		want     string
	}{
		{meta.ClusterSettings{}, "host=10.0.0.1 port=5432 user=postgres application_name=pg2 connect_timeout=2"},
		{meta.ClusterSettings{PGUser: "cm", ReplicationUser: "repl"}, "host=10.0.0.1 port=5432 user=repl application_name=pg2 connect_timeout=2"},
		{meta.ClusterSettings{PGUser: "cm", PGPassword: `it's\x`}, `host=10.0.0.1 port=5432 user=cm application_name=pg2 connect_timeout=2 password='it\'s\\x'`},
	}
	for _, tc := range cases {
		if got := ConnInfo(meta.Cluster{Settings: tc.settings}, p, "pg2"); got != tc.want {
			t.Errorf("ConnInfo(%+v) = %s\nwant %s", tc.settings, got, tc.want)
		}
	}
}

func TestSlotName(t *testing.T) {
	if slotName("pg-2") != "pg_2" {
		t.Fatal(slotName("pg-2"))
	}
	if slotOf(meta.Shard{}, "pg2") != "" || slotOf(meta.Shard{Settings: meta.ShardSettings{ReplicationSlots: true}}, "pg-2") != "pg_2" {
		t.Fatal("slotOf")
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"pg_rewind -D x: exit status 1: PANIC:  could not locate a valid checkpoint record\npg_rewind: error: postgres single-user mode in target cluster failed\npg_rewind: detail: Command was: postgres --single",
			"PANIC:  could not locate a valid checkpoint record"},
		{"pg_rewind: error: could not find previous WAL record at 0/3000028\npg_rewind: detail: x", "pg_rewind: error: could not find previous WAL record at 0/3000028"},
		{"something\nlast words\n", "last words"},
	} {
		if got := verdict(tc.in); got != tc.want {
			t.Errorf("verdict(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

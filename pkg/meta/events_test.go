package meta

import (
	"strconv"
	"strings"
	"testing"
)

func TestCompactEvents(t *testing.T) {
	// events builds a history from keys in order: "a" is shard a of
	// cluster c, "-" an event of the group; ids count from 1.
	events := func(keys string) []Event {
		var out []Event
		for i, k := range strings.Fields(keys) {
			e := Event{ID: uint64(i + 1), Kind: "k", Message: "m"}
			if k != "-" {
				e.Cluster, e.Shard = "c", k
			}
			out = append(out, e)
		}
		return out
	}
	// show lists the kept events as key:id.
	show := func(es []Event) string {
		var b strings.Builder
		for _, e := range es {
			k := e.Shard
			if k == "" {
				k = "-"
			}
			b.WriteString(k + ":" + strconv.FormatUint(e.ID, 10) + " ")
		}
		return strings.TrimSpace(b.String())
	}
	for _, tc := range []struct {
		name, keys string
		limit      int
		want       string
	}{
		{"under the limit: all", "a b a", 5, "a:1 b:2 a:3"},
		{"one key: the newest", "a a a a a", 3, "a:3 a:4 a:5"},
		{"a busy shard gives way", "b a a a c a a", 4, "b:1 c:5 a:6 a:7"},
		{"equal shares, newest of each", "a b a b a b", 4, "a:3 b:4 a:5 b:6"},
		{"a share left over stays unused", "a b c a b c", 4, "a:4 b:5 c:6"},
		{"the group's events are a key of their own", "- a a a a -", 3, "a:5 -:6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := events(tc.keys)
			if got := show(compactEvents(in, tc.limit)); got != tc.want {
				t.Fatalf("kept %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFairQuota(t *testing.T) {
	for _, tc := range []struct {
		sizes []int
		limit int
		want  int
	}{
		{[]int{3, 3}, 10, 10},
		{[]int{10}, 4, 4},
		{[]int{1, 1, 20}, 10, 8},
		{[]int{5, 5, 5}, 10, 3},
		{[]int{2, 9, 9}, 10, 4},
	} {
		if got := fairQuota(append([]int(nil), tc.sizes...), tc.limit); got != tc.want {
			t.Errorf("fairQuota(%v, %d) = %d, want %d", tc.sizes, tc.limit, got, tc.want)
		}
	}
}

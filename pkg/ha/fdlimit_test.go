package ha

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestFDCheck: a replica warns when its fleet needs more open files than
// its limit allows, once, and again only when the fleet has grown by a
// tenth since.
func TestFDCheck(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	c := fdCheck{limit: func() (uint64, error) { return 20000, nil }}
	warnings := func() int { return strings.Count(buf.String(), "open-file limit is below") }
	for _, tc := range []struct {
		nodes int
		want  int // warnings so far
	}{
		{1000, 0},
		{9700, 0}, // 19,912 needed
		{10002, 1},
		{10500, 1}, // grown by less than a tenth
		{11100, 2},
		{11000, 2},
		{1000, 2},
	} {
		c.check(tc.nodes, log)
		if got := warnings(); got != tc.want {
			t.Fatalf("after %d nodes: %d warnings, want %d:\n%s", tc.nodes, got, tc.want, buf.String())
		}
	}
	if !strings.Contains(buf.String(), "limit=20000 needed=20516 nodes=10002") {
		t.Fatalf("the warning does not say the limit, the need and the fleet:\n%s", buf.String())
	}
}

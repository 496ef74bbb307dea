package ha

import (
	"fmt"
	"testing"
	"time"
)

// TestRoleBook_RefreshesSpread: a new leader declares every standby in
// its first round; their refreshes then fall over the next roleRefresh,
// not all in one round, and each is due again at most roleRefresh after
// it was sent.
func TestRoleBook_RefreshesSpread(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	b := newRoleBook()
	const n = 1000
	for i := range n {
		b.sent(fmt.Sprintf("c1/s%d/pg2", i), "standby", t0, nil)
	}
	var dueBy [10]int // due by t0 + (k+1) seconds
	for k := range dueBy {
		for i := range n {
			if b.due(fmt.Sprintf("c1/s%d/pg2", i), "standby", t0.Add(time.Duration(k+1)*time.Second)) {
				dueBy[k]++
			}
		}
	}
	for k, d := range dueBy[:9] {
		if want := (k + 1) * n / 10; d < want-n/20 || d > want+n/20 {
			t.Errorf("%d of %d due %d s after the first round, want about %d: %v", d, n, k+1, want, dueBy)
		}
	}
	if dueBy[9] != n {
		t.Errorf("%d of %d due a roleRefresh after they were sent, want all", dueBy[9], n)
	}
	// A refresh is recorded as sent when it is: the next one is a whole
	// roleRefresh later.
	key := "c1/s1/pg2"
	b.sent(key, "standby", t0.Add(10*time.Second), nil)
	if b.due(key, "standby", t0.Add(19*time.Second)) || !b.due(key, "standby", t0.Add(20*time.Second)) {
		t.Error("a refreshed declaration is not due exactly a roleRefresh after it")
	}
	if !b.due(key, "standby sync", t0.Add(11*time.Second)) {
		t.Error("a changed declaration is not due at once")
	}
}

package fencing

import "testing"

func TestQuorum(t *testing.T) {
	for _, tc := range []struct{ n, serving, detached int }{
		{1, 0, 1},
		{2, 1, 1},
		{3, 1, 2},
		{4, 2, 2},
		{5, 2, 3},
		{7, 3, 4},
	} {
		if got := ServingAcks(tc.n); got != tc.serving {
			t.Errorf("ServingAcks(%d) = %d, want %d", tc.n, got, tc.serving)
		}
		if got := DetachedNeeded(tc.n); got != tc.detached {
			t.Errorf("DetachedNeeded(%d) = %d, want %d", tc.n, got, tc.detached)
		}
	}
	for n := 1; n <= 9; n++ {
		standbys := n - 1
		if ServingAcks(n)+DetachedNeeded(n) <= standbys {
			t.Errorf("n=%d: %d acknowledging and %d detached standbys of %d need not overlap", n, ServingAcks(n), DetachedNeeded(n), standbys)
		}
		if n > 1 && DetachedNeeded(n) > standbys {
			t.Errorf("n=%d: a failover needs %d detached standbys of %d", n, DetachedNeeded(n), standbys)
		}
	}
}

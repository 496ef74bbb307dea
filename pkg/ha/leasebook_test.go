package ha

import (
	"context"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/agent"
)

// TestLeaseBook: what the leader may have granted bounds how long a
// failover waits for an old primary it could not fence. Each renewal
// runs from the last answered one's sending, so unanswered renewals grant
// nothing new; an answer, even a refusal, moves the start.
func TestLeaseBook(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	const url, dir = "http://h1:7000", "/data/pg1"
	unreachable := &agent.UnreachableError{URL: url, Command: "lease", Err: context.DeadlineExceeded}
	refused := &agent.Error{Status: 409, Detail: "stale epoch"}

	b := newLeaseBook(t0, 1500*time.Millisecond)
	if got, standbys := b.fencedBy(url, dir); !got.Equal(at(1500).Add(fenceSlack)) || standbys != nil {
		t.Fatalf("a new leader: fenced by %v naming %v, want %v (an earlier leader's lease) naming none", got, standbys, at(1500).Add(fenceSlack))
	}
	type step struct {
		send   int
		err    error
		from   int // want
		fenced int // want fencedBy - fenceSlack after the answer
	}
	run := func(b *leaseBook, dir string, steps []step) {
		t.Helper()
		key := leaseBookKey(url, dir)
		for i, s := range steps {
			from, ok := b.from(key, at(s.send), []string{"pg2", "pg3"}, false)
			if !ok {
				t.Fatalf("%s renewal %d sent at %d ms: refused", dir, i, s.send)
			}
			b.answered(key, at(s.send), s.err)
			if !from.Equal(at(s.from)) {
				t.Errorf("%s renewal %d sent at %d ms: from %v, want %d ms", dir, i, s.send, from.Sub(t0), s.from)
			}
			got, standbys := b.fencedBy(url, dir)
			if got = got.Add(-fenceSlack); !got.Equal(at(s.fenced)) {
				t.Errorf("%s after renewal %d: fenced by %v, want %d ms (+slack)", dir, i, got.Sub(t0), s.fenced)
			}
			if len(standbys) != 2 {
				t.Errorf("%s after renewal %d: standbys %v, want the renewal's [pg2 pg3]", dir, i, standbys)
			}
		}
	}
	run(b, dir, []step{
		{send: 1000, err: nil, from: 1000, fenced: 2500}, // the first: from its sending
		{send: 1500, err: nil, from: 1000, fenced: 2500},
		{send: 2000, err: nil, from: 1500, fenced: 3000},
		{send: 2500, err: unreachable, from: 2000, fenced: 3500}, // may have arrived
		{send: 3000, err: unreachable, from: 2000, fenced: 3500}, // grants nothing new
		{send: 3500, err: refused, from: 2000, fenced: 3500},     // an answer
		{send: 4000, err: nil, from: 3500, fenced: 5000},
		{send: 4500, err: nil, from: 4000, fenced: 5500},
		{send: 9000, err: unreachable, from: 9000, fenced: 10500},  // after a pause: afresh
		{send: 12000, err: unreachable, from: 4500, fenced: 10500}, // never after an unanswered one
		{send: 12500, err: refused, from: 4500, fenced: 10500},     // refused as stale: an answer
		{send: 13000, err: nil, from: 12500, fenced: 14000},
	})
	// A first renewal that goes unanswered: the next ones run from its
	// sending, not from the zero time.
	run(b, "/data/pg2", []step{
		{send: 1000, err: unreachable, from: 1000, fenced: 2500},
		{send: 1500, err: unreachable, from: 1000, fenced: 2500},
		{send: 3000, err: unreachable, from: 1000, fenced: 2500},
		{send: 3500, err: nil, from: 1000, fenced: 2500},
		{send: 4000, err: nil, from: 3500, fenced: 5000},
	})

	// Once a failover has asked when the primary is fenced, no round
	// renews it past that (a renewal sent after the question would hold
	// the agent's lease longer than the failover waits) until then; an
	// operation that makes it the primary again renews it at once.
	b = newLeaseBook(t0, 1500*time.Millisecond)
	key := leaseBookKey(url, dir)
	b.from(key, at(1000), nil, false)
	b.answered(key, at(1000), nil)
	fenced, _ := b.fence(url, dir)
	if want := at(2500).Add(fenceSlack); !fenced.Equal(want) {
		t.Fatalf("fenced by %v, want %v", fenced.Sub(t0), want.Sub(t0))
	}
	if from, ok := b.from(key, at(1500), nil, false); ok {
		t.Fatalf("a round's renewal after the failover asked: granted from %v", from.Sub(t0))
	}
	if again, _ := b.fencedBy(url, dir); !again.Equal(fenced) {
		t.Fatalf("fenced by %v after a refused renewal, want %v", again.Sub(t0), fenced.Sub(t0))
	}
	if _, ok := b.from(key, fenced.Add(-time.Millisecond), nil, false); ok {
		t.Fatal("a round's renewal before the fence deadline was granted")
	}
	if from, ok := b.from(key, fenced, nil, false); !ok || !from.Equal(fenced) {
		t.Fatalf("a round's renewal at the fence deadline: from %v (%v), want afresh from it", from.Sub(t0), ok)
	}
	b.fence(url, "/data/pg3") // a primary this leader never renewed
	if _, ok := b.from(leaseBookKey(url, "/data/pg3"), at(100), nil, false); ok {
		t.Fatal("a first renewal after the failover asked was granted")
	}
	if from, ok := b.from(leaseBookKey(url, "/data/pg3"), at(200), nil, true); !ok || !from.Equal(at(200)) {
		t.Fatalf("the renewal of a promoted node: from %v (%v), want from its sending", from.Sub(t0), ok)
	}

	// A node promoted again within the lease of its earlier term as the
	// primary (a switchover back): the promotion's renewal runs from its
	// sending, not from the last answered renewal of that term, whose
	// lease ran out moments after the promotion (and with its only
	// standby restarting, its agent killed it).
	b = newLeaseBook(t0, 1500*time.Millisecond)
	b.from(key, at(1000), nil, false)
	b.answered(key, at(1000), nil)
	if from, ok := b.from(key, at(2200), []string{"pg2"}, true); !ok || !from.Equal(at(2200)) {
		t.Fatalf("the promotion's renewal 1.2 s after the last answered one: from %v (%v), want from its sending", from.Sub(t0), ok)
	}
	if got, _ := b.fencedBy(url, dir); !got.Equal(at(3700).Add(fenceSlack)) {
		t.Fatalf("fenced by %v after the promotion's renewal, want %v", got.Sub(t0), at(3700).Add(fenceSlack).Sub(t0))
	}
}

package ha

import (
	"errors"
	"sync"
	"time"

	"github.com/clustermgr/clustermgr/pkg/agent"
)

// ackWithin is how long, once a primary's lease has run out, a standby
// may take to acknowledge WAL the agent has just written for the primary
// to keep serving (agent.RunLeases).
const ackWithin = 300 * time.Millisecond

// fenceSlack is how long after its lease ends an agent has fenced its
// primary at the latest: a lease check every 100 ms, 500 ms to connect
// and commit (agent.checkBudget), the ack wait (a check that has not
// concluded by then fences the server too), and 100 ms of clock
// difference between the manager and the agent's host.
const fenceSlack = 100*time.Millisecond + 500*time.Millisecond + ackWithin + 100*time.Millisecond

// leaseBook is what this leader has granted: for each primary, the
// latest end of a lease that its agent may hold. Every renewal grants a
// lease from the sending of the last renewal the agent answered (from
// the renewal's own sending for the first, or when that lease is over
// and the agent answered the last renewal), on the manager's clock; the
// agent refuses one that has already ended when it arrives. A renewal
// that is queued in a frozen agent's socket or lost in a partition
// therefore grants nothing past the last answered one's lease: a failover
// that cannot fence the old primary through its agent waits until that
// end plus fenceSlack, by which time the agent has fenced the server.
type leaseBook struct {
	mu    sync.Mutex
	start time.Time // an earlier leader's renewals ended by then
	ttl   time.Duration
	keys  map[string]*leaseKey
}

type leaseKey struct {
	until time.Time // latest end granted
	// closed is the end fence last answered: a failover waits until
	// then, so no round renews the lease before it.
	closed       time.Time
	standbys     []string  // whose acknowledgements the last renewal counted
	lastAnswered time.Time // send time of the last answered renewal
	first        time.Time // send time of the first renewal
	unanswered   bool      // the last renewal got no answer
}

func newLeaseBook(start time.Time, ttl time.Duration) *leaseBook {
	return &leaseBook{start: start, ttl: ttl, keys: map[string]*leaseKey{}}
}

func leaseBookKey(agentURL, dataDir string) string { return agentURL + "#" + dataDir }

// from returns the start of the next renewal of key sent at now, and
// records the end it grants and the standbys it names. It refuses (false)
// while a failover waits for the end fence answered, unless promoted:
// an operation has made the node the primary since, and its renewal runs
// from its sending.
func (b *leaseBook) from(key string, now time.Time, standbys []string, promoted bool) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.keys[key]
	if k == nil {
		k = &leaseKey{}
		b.keys[key] = k
	}
	if !promoted && now.Before(k.closed) {
		return time.Time{}, false
	}
	k.closed = time.Time{}
	// After a pause (renewals stop while an operation replaces the
	// primary) whose last renewal was answered, the last answered lease
	// may be over: start afresh, as for a first renewal. After an
	// unanswered one, never.
	if k.first.IsZero() {
		k.first = now
	}
	base := k.lastAnswered
	if base.IsZero() {
		base = k.first
	}
	// A promotion's renewal starts the node's term as the primary
	// afresh: the last answered renewal may be from an earlier term, a
	// switchover back within its lease, and granted from it the lease
	// ran out moments after the promotion.
	from := now
	if !promoted && (k.unanswered || base.Add(b.ttl).After(now)) {
		from = base
	}
	if end := from.Add(b.ttl); end.After(k.until) {
		k.until = end
	}
	k.standbys = append([]string(nil), standbys...)
	return from, true
}

// answered records the outcome of a renewal sent at sent: an answer of
// the agent (nil, or an agent.Error: a refusal) moves the start of the
// next renewals; no answer (unreachable, none in time, one cut short)
// does not.
func (b *leaseBook) answered(key string, sent time.Time, err error) {
	var refused *agent.Error
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.keys[key]
	if k == nil {
		return
	}
	if err != nil && !errors.As(err, &refused) {
		k.unanswered = true
		return
	}
	k.unanswered = false
	if sent.After(k.lastAnswered) {
		k.lastAnswered = sent
	}
}

// fencedBy returns when the primary in dataDir under agentURL has been
// fenced by its agent at the latest, if it is up, its agent runs and too
// few of standbys take its WAL (fencing.ServingAcks); standbys are those
// named by this leader's last renewal, nil when it sent none.
func (b *leaseBook) fencedBy(agentURL, dataDir string) (time.Time, []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fencedByLocked(leaseBookKey(agentURL, dataDir))
}

func (b *leaseBook) fencedByLocked(key string) (time.Time, []string) {
	end := b.start.Add(b.ttl)
	var standbys []string
	if k := b.keys[key]; k != nil {
		if k.until.After(end) {
			end = k.until
		}
		// Not nil, even when it named none: a lease for a primary
		// alone asks for no acknowledgement, so no standby added since
		// may be promoted past it.
		standbys = append([]string{}, k.standbys...)
	}
	return end.Add(fenceSlack), standbys
}

// fence is fencedBy for a failover that will wait until the time it
// returns: no round renews that primary's lease before then (from), so
// that no renewal sent after the question holds the agent's lease longer.
func (b *leaseBook) fence(agentURL, dataDir string) (time.Time, []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := leaseBookKey(agentURL, dataDir)
	end, standbys := b.fencedByLocked(key)
	k := b.keys[key]
	if k == nil {
		k = &leaseKey{}
		b.keys[key] = k
	}
	if end.After(k.closed) {
		k.closed = end
	}
	return end, standbys
}

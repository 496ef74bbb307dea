package ha

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/clustermgr/clustermgr/pkg/action"
	"github.com/clustermgr/clustermgr/pkg/decision"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// runningOp is an operation this leader term runs: at most one per shard.
type runningOp struct {
	id, kind string
	cancel   context.CancelFunc
	done     chan struct{} // closed when its routine has returned
}

// opRunner is the state of the operation runner: the operation each
// shard runs in this leader term, when its last one ended, and the
// backoffs of what failed (routine changes and failovers per shard kind,
// rejoins per node, the nodes whose unreachable agent a watcher polls).
type opRunner struct {
	mu           sync.Mutex
	running      map[string]*runningOp   // shard key → operation executing in this term
	opEnded      map[string]time.Time    // shard key → when its last operation ended
	routineRetry map[string]routineRetry // shard key#kind → backoff
	rejoinAt     map[string]time.Time    // node key → earliest next rejoin attempt
	rejoinFails  map[string]int          // node key → failed rejoins in a row
	watching     map[string]bool         // node key → a watcher polls its agent
	// requested counts the manual operations being prepared per shard
	// key: no routine change starts there meanwhile (hold); starting
	// counts the routine changes being recorded, which a hold waits for.
	requested map[string]int
	starting  map[string]int
	startDone *sync.Cond // on mu: a routine change's start ended
}

// hold keeps routine changes off the shard key while a manual operation
// is prepared on it (it waits for fresh probes, and a round starting a
// sync-set or a repoint each interval took the shard from it, a 409),
// until release. Failovers are not held.
func (o *opRunner) hold(key string) (release func()) {
	o.mu.Lock()
	o.requested[key]++
	// A routine change that passed its check before the hold is
	// recorded (or refused) before the hold returns: the request then
	// sees it, and preempts it.
	for o.starting[key] > 0 {
		o.startDone.Wait()
	}
	o.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			o.mu.Lock()
			defer o.mu.Unlock()
			if o.requested[key]--; o.requested[key] <= 0 {
				delete(o.requested, key)
			}
		})
	}
}

// held reports whether a manual operation is being prepared on key.
func (o *opRunner) held(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.requested[key] > 0
}

// beginRoutine reserves key for a routine change's start unless it is
// held; endRoutine ends the reservation.
func (o *opRunner) beginRoutine(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.requested[key] > 0 {
		return false
	}
	o.starting[key]++
	return true
}

func (o *opRunner) endRoutine(key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.starting[key]--; o.starting[key] <= 0 {
		delete(o.starting, key)
	}
	o.startDone.Broadcast()
}

func newOpRunner() *opRunner {
	o := &opRunner{running: map[string]*runningOp{}, opEnded: map[string]time.Time{}, routineRetry: map[string]routineRetry{},
		rejoinAt: map[string]time.Time{}, rejoinFails: map[string]int{}, watching: map[string]bool{}, requested: map[string]int{}, starting: map[string]int{}}
	o.startDone = sync.NewCond(&o.mu)
	return o
}

// current returns the operation the shard runs in this term, and when
// its last one ended.
func (o *opRunner) current(key string) (*runningOp, time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.running[key], o.opEnded[key]
}

// newTerm forgets the operations of an earlier term.
func (o *opRunner) newTerm() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.running = map[string]*runningOp{}
}

// maxRetryBackoff caps the backoff of routine changes and refused
// failovers, whatever the probe interval.
const maxRetryBackoff = 10 * time.Second

// routineRetry is the backoff of a shard's failed routine changes.
type routineRetry struct {
	fails int
	next  time.Time
}

// startOp runs op in the current leader term, in a routine of its own
// that a preemption can stop.
func (m *Manager) startOp(op meta.Operation) {
	key := shardKey(op.Cluster, op.Shard)
	m.mu.Lock()
	defer m.mu.Unlock() // the term does not end while it starts
	ctx, wg := m.term, m.termWG
	if ctx == nil {
		return
	}
	m.ops.mu.Lock()
	if m.ops.running[key] != nil {
		m.ops.mu.Unlock()
		return
	}
	octx, cancel := context.WithCancel(ctx)
	r := &runningOp{id: op.ID, kind: op.Kind, cancel: cancel, done: make(chan struct{})}
	m.ops.running[key] = r
	m.ops.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(r.done)
		defer cancel()
		err := m.exec.Run(octx, op)
		// The outcome and its backoff are recorded before the operation
		// stops counting as running: a round in between would start the
		// same operation again at once.
		switch {
		case op.Kind == action.KindRejoin:
			m.rejoinEnded(ctx, op, err)
		case action.Preemptible(op.Kind) && octx.Err() == nil:
			m.routineEnded(key, op.Kind, err)
		case op.Kind == action.KindFailover && octx.Err() == nil:
			// An automatic failover refused because the old primary may
			// keep a majority is tried again with the routine changes'
			// backoff, not every round, until the shard needs none
			// (decideShard clears it).
			var refused *action.MayStillServeError
			if err == nil || errors.As(err, &refused) {
				m.routineEnded(key, op.Kind, err)
			}
		}
		m.ops.mu.Lock()
		if m.ops.running[key] == r {
			delete(m.ops.running, key)
		}
		m.ops.opEnded[key] = m.cfg.Now()
		m.ops.mu.Unlock()
		if m.cfg.OperationEnded != nil && octx.Err() == nil {
			m.reportEnded(ctx, op.ID)
		}
		if err != nil && octx.Err() == nil {
			m.log.Warn("operation ended with an error", "op", op.ID, "err", err)
		}
	}()
}

// startRoutine starts a routine change of a healthy shard (a repoint or
// a sync-set change) under its primary, unless the same change failed
// lately (decision.RetryBackoff from one probe interval) or a manual
// operation is being prepared on the shard (opRunner.hold). It reports
// whether it started one.
func (m *Manager) startRoutine(ctx context.Context, s *shardSnap, kind, target string, spec any, reason string) bool {
	p := s.primary()
	if p == nil {
		return false
	}
	key := shardKey(s.cluster.Name, s.shard.Name)
	if m.retryLater(key, kind) || !m.ops.beginRoutine(key) {
		return false
	}
	defer m.ops.endRoutine(key)
	raw, err := json.Marshal(spec)
	if err != nil {
		m.log.Warn("encode routine change", "kind", kind, "err", err)
		return false
	}
	if _, err := m.startOperation(ctx, meta.Operation{Kind: kind, Cluster: s.cluster.Name, Shard: s.shard.Name, From: p.Name, Target: target,
		Epoch: s.shard.Epoch, Reason: reason, Spec: raw}); err != nil {
		m.log.Warn("start "+kind, "shard", shardKey(s.cluster.Name, s.shard.Name), "err", err)
		return false
	}
	return true
}

// retryLater reports whether kind failed on the shard lately and is
// still backing off (routineEnded).
func (m *Manager) retryLater(key, kind string) bool {
	return m.ops.backingOff(key+"#"+kind, m.cfg.Now())
}

// routineEnded resets or extends the backoff of a routine change.
func (m *Manager) routineEnded(key, kind string, err error) {
	m.ops.ended(key+"#"+kind, err, m.cfg.Now(), m.cfg.ProbeInterval)
}

// backingOff reports whether rk (shard key#kind) may not start yet.
func (o *opRunner) backingOff(rk string, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return now.Before(o.routineRetry[rk].next)
}

// ended forgets rk's backoff after a success and extends it after a
// failure (decision.RetryBackoff from base, at most maxRetryBackoff).
func (o *opRunner) ended(rk string, err error, now time.Time, base time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err == nil {
		delete(o.routineRetry, rk)
		return
	}
	r := o.routineRetry[rk]
	r.fails++
	r.next = now.Add(min(decision.RetryBackoff(r.fails, base), maxRetryBackoff))
	o.routineRetry[rk] = r
}

// decideDuringRoutine decides for a shard while a routine change runs on
// it: only a failover is acted on, and it first preempts the change.
func (m *Manager) decideDuringRoutine(ctx context.Context, s *shardSnap, voters []string) {
	ds := decision.Decide(m.input(s, voters))
	if len(ds) == 0 || ds[0].Kind != decision.Failover || !s.cluster.Settings.AutoFailover {
		return
	}
	if err := m.preempt(ctx, s, ds[0].Reason); err != nil {
		m.log.Warn("preempt a routine change for a failover", "shard", shardKey(s.cluster.Name, s.shard.Name), "err", err)
		return
	}
	// Decide again on the shard as the preempted change left it (it may
	// have recorded a smaller synchronous set).
	fresh, err := m.findShard(ctx, s.cluster.Name, s.shard.Name)
	if err != nil {
		return
	}
	m.decideShard(ctx, fresh, voters)
}

// errNotPreemptible is a running operation that must finish first.
var errNotPreemptible = errors.New("the running operation cannot be preempted")

// preempt stops the routine change running on the shard (s.op), waits for
// its routine to return and records it cancelled, so that a failover or a
// requested operation starts at once. What the change leaves half done is
// safe (action.Preemptible) and decided again later.
func (m *Manager) preempt(ctx context.Context, s *shardSnap, why string) error {
	key := shardKey(s.cluster.Name, s.shard.Name)
	r, _ := m.ops.current(key)
	if r != nil && !action.Preemptible(r.kind) {
		return errNotPreemptible
	}
	if s.op != nil && !action.Preemptible(s.op.Kind) {
		return errNotPreemptible
	}
	if r != nil {
		r.cancel()
		<-r.done
	}
	ids := []string{}
	if r != nil {
		ids = append(ids, r.id)
	}
	if s.op != nil && (r == nil || s.op.ID != r.id) {
		ids = append(ids, s.op.ID)
	}
	for _, id := range ids {
		err := m.store.Apply(ctx, &meta.FinishOperation{ID: id, State: meta.OpCancelled, Error: "preempted: " + why})
		if err != nil && meta.KindOf(err) != meta.KindConflict && meta.KindOf(err) != meta.KindNotFound {
			return err // a conflict: it had finished meanwhile
		}
		m.log.Info("routine change preempted", "op", id, "why", why)
	}
	s.op = nil
	return nil
}

// reportEnded gives the operation id, as the state records it now, to the
// OperationEnded hook when it has finished.
func (m *Manager) reportEnded(ctx context.Context, id string) {
	var done *meta.Operation
	_ = m.store.View(ctx, meta.Stale, func(st *meta.State) error {
		if op, ok := st.Operations[id]; ok && op.Finished() {
			o := *op
			o.Steps = append([]meta.OperationStep(nil), op.Steps...)
			done = &o
		}
		return nil
	})
	if done != nil {
		m.cfg.OperationEnded(*done)
	}
}

package ha

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/detector"
	"github.com/clustermgr/clustermgr/pkg/status"
)

// A follower's probes count only as votes on whether a primary is down,
// and a vote matters only once the leader sees the primary fail. So a
// follower probes a primary each round only while it needs a fresh look:
// while the leader asks it to (watchAsks, leader side; watchList,
// follower side), and while its own last look was not of a healthy
// primary. Every node is probed in the sweep besides, once in
// followerSweep rounds (sweepPart).
//
// The leader asks when its probe of a primary fails, and when it has not
// answered after a quarter of the probe timeout (a frozen host: the
// followers' first probe then starts before the leader's has timed out,
// so they count their failures with it). A follower probes a node it is
// asked about at once and then each round for watchRounds rounds,
// renewed while the leader keeps asking.

// watchRounds is how many rounds a follower probes each node it was
// asked about.
const watchRounds = 3

// watchList is a follower's side: the nodes the leader asked it to probe
// each round, and till when.
type watchList struct {
	mu    sync.Mutex
	until map[string]time.Time
	fresh map[string]bool // asked since the detector last took them
	kick  chan struct{}   // the detector probes the fresh ones at once
	// leaderAsks is whether the leader said, in its last answer taking
	// this replica's view, that its asks reach this replica (a view that
	// got no answer changes nothing). A leader of an earlier version, or
	// one whose last ask to this replica failed, does not: the follower
	// then probes every primary each round.
	leaderAsks atomic.Bool
}

func newWatchList() *watchList {
	return &watchList{until: map[string]time.Time{}, fresh: map[string]bool{}, kick: make(chan struct{}, 1)}
}

// add watches keys until until (at now) and asks the detector to probe
// them now; it forgets the watches that ended.
func (w *watchList) add(keys []string, now, until time.Time) {
	w.mu.Lock()
	for k, u := range w.until {
		if !now.Before(u) {
			delete(w.until, k)
		}
	}
	for _, k := range keys {
		w.until[k] = until
		w.fresh[k] = true
	}
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// takeFresh returns the keys asked about since the last call.
func (w *watchList) takeFresh() map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	f := w.fresh
	w.fresh = map[string]bool{}
	return f
}

// watched reports whether key is watched at now.
func (w *watchList) watched(key string, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	u, ok := w.until[key]
	return ok && now.Before(u)
}

// followerProbes reports whether a follower probes a primary in a round
// that is not a sweep: when the leader's asks do not reach it, when it
// asks for this one, and when this replica's last look was not of a
// healthy primary (it has none, the node did not answer, or answered in
// recovery: a primary being promoted), so that a vote it sends is never
// older than a round.
func followerProbes(leaderAsks, watched bool, v nodeView, known bool) bool {
	if !leaderAsks || watched || !known {
		return true
	}
	return v.health != status.Healthy || v.sample == nil || v.sample.InRecovery
}

// probesHere reports whether this replica probes target t in a round
// (sweep: whatever it is, as the leader does, and in a follower's sweep).
func (m *Manager) probesHere(t detector.Target, sweep bool, now time.Time) bool {
	if sweep {
		return true
	}
	if !t.Primary {
		return false
	}
	v, known := m.obs.view(t.Key)
	return followerProbes(m.watch.leaderAsks.Load(), m.watch.watched(t.Key, now), v, known)
}

// probesNow reports whether a node the leader has just asked about is
// probed at once rather than at its phase: not when this replica probed
// it in the last half interval, so that asks never count a node's
// failures faster than its probe period (they withhold its lease once a
// majority sees it down).
func (m *Manager) probesNow(key string, now time.Time) bool {
	v, known := m.obs.view(key)
	return !known || now.Sub(v.last.At) >= m.cfg.ProbeInterval/2
}

// Watch is a follower's side of the leader's ask: it probes keys at once
// and each round for watchRounds rounds. The leader ignores it: it
// probes every node each round.
func (m *Manager) Watch(keys []string) {
	if m.store.IsLeader() {
		return
	}
	now := time.Now()
	m.watch.add(keys, now, now.Add(watchRounds*m.cfg.ProbeInterval))
}

// watchAsks is the leader's side: the nodes to ask each follower about,
// whether a request to it is under way, and when one last reached it.
type watchAsks struct {
	mu      sync.Mutex
	keys    map[string]bool            // asked, not yet given to the followers
	pending map[string]map[string]bool // replica id → keys for its next request
	busy    map[string]bool            // replica id → a request under way
	reached map[string]time.Time       // replica id → the last request it took
	kick    chan struct{}
}

func newWatchAsks() *watchAsks {
	return &watchAsks{keys: map[string]bool{}, pending: map[string]map[string]bool{}, busy: map[string]bool{},
		reached: map[string]time.Time{}, kick: make(chan struct{}, 1)}
}

// ask adds key to the next request to each follower.
func (a *watchAsks) ask(key string) {
	a.mu.Lock()
	a.keys[key] = true
	a.mu.Unlock()
	a.wake()
}

func (a *watchAsks) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// due hands the keys asked to each of replicas and returns, for each one
// without a request under way, its keys (marking it busy). With every,
// a replica with nothing asked gets an empty request: it shows that the
// asks reach it.
func (a *watchAsks) due(replicas []string, every bool) map[string][]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string][]string{}
	for _, id := range replicas {
		p := a.pending[id]
		if p == nil {
			p = map[string]bool{}
			a.pending[id] = p
		}
		for k := range a.keys {
			p[k] = true
		}
		if a.busy[id] || len(p) == 0 && !every {
			continue
		}
		keys := make([]string, 0, len(p))
		for k := range p {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		clear(p)
		a.busy[id] = true
		out[id] = keys
	}
	clear(a.keys)
	return out
}

// sent records the end of a request to replica id (ok: it took it) and
// reports whether more is pending for it.
func (a *watchAsks) sent(id string, ok bool, at time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.busy[id] = false
	if ok {
		a.reached[id] = at
	}
	return len(a.pending[id]) > 0
}

// reaches reports whether a request to replica id was taken since since.
func (a *watchAsks) reaches(id string, since time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reached[id].After(since)
}

// AsksReach reports whether this leader's asks reach replica id: one was
// taken in the last three probe intervals (the leader sends each
// follower one each interval, empty when nothing is asked). The answer
// to the replica's view says so.
func (m *Manager) AsksReach(id string) bool {
	return m.store.IsLeader() && m.asks.reaches(id, time.Now().Add(-3*m.cfg.ProbeInterval))
}

// askWatchers sends each follower what the leader asks it to probe, one
// request at a time to each (what is asked meanwhile goes in its next),
// and an empty one each interval, until ctx ends; it waits for the
// requests it started.
func (m *Manager) askWatchers(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(m.cfg.ProbeInterval)
	defer t.Stop()
	for {
		every := false
		select {
		case <-ctx.Done():
			return
		case <-m.asks.kick:
		case <-t.C:
			every = true
		}
		if !m.store.IsLeader() {
			m.asks.due(nil, false) // what was asked while leading is void
			continue
		}
		token := m.PeerToken()
		info, err := m.store.Info()
		if token == "" || err != nil {
			continue
		}
		addr := map[string]string{}
		var ids []string
		for _, mem := range info.Members {
			if mem.ID != m.store.ID() && mem.APIAddr != "" {
				addr[mem.ID] = mem.APIAddr
				ids = append(ids, mem.ID)
			}
		}
		for id, keys := range m.asks.due(ids, every) {
			body, _ := json.Marshal(api.PeerWatch{Keys: keys})
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := m.postWatch(ctx, addr[id], token, body)
				if err != nil && ctx.Err() == nil {
					m.viewErr.log(m.log, "watch "+id, "ask replica "+id+" to probe the nodes this leader sees fail; it probes every primary each round until an ask reaches it", err)
				}
				if m.asks.sent(id, err == nil, time.Now()) {
					m.asks.wake()
				}
			}()
		}
	}
}

func (m *Manager) postWatch(ctx context.Context, apiAddr, token string, body []byte) error {
	_, err := m.postPeer(ctx, m.cfg.ProbeInterval, apiAddr, "/v1/internal/watch", token, body)
	return err
}

// peerRefusal is another replica's answer other than 204 to a post.
type peerRefusal struct {
	status string
	detail []byte
}

func (r *peerRefusal) Error() string { return fmt.Sprintf("%s: %s", r.status, r.detail) }

// postPeer posts body to path of the replica at apiAddr with the peer
// credential, within timeout. It returns the answer's header when the
// replica took it (204), a *peerRefusal when it answered otherwise, or
// the transport's error.
func (m *Manager) postPeer(ctx context.Context, timeout time.Duration, apiAddr, path, token string, body []byte) (http.Header, error) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, strings.TrimSuffix(apiAddr, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(api.ForwardedHeader, m.store.ID())
	resp, err := m.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		detail, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &peerRefusal{status: resp.Status, detail: bytes.TrimSpace(detail)}
	}
	return resp.Header, nil
}

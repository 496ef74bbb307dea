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
// primary. Every node is probed in the sweeps besides (followerSweep).
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
	kick  chan struct{} // the detector probes the nodes asked about at once
	// leaderAsks is whether the leader said, in its last answer taking
	// this replica's view, that it asks for the probes it needs (a view
	// that got no answer changes nothing). A leader of an earlier version
	// does not: the follower then probes every primary each round.
	leaderAsks atomic.Bool
}

func newWatchList() *watchList {
	return &watchList{until: map[string]time.Time{}, kick: make(chan struct{}, 1)}
}

// add watches keys until until and asks the detector to probe them now.
func (w *watchList) add(keys []string, until time.Time) {
	w.mu.Lock()
	for _, k := range keys {
		w.until[k] = until
	}
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// watched reports whether key is watched at now, and forgets the watches
// that ended.
func (w *watchList) watched(key string, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	u, ok := w.until[key]
	if ok && !now.Before(u) {
		delete(w.until, key)
		return false
	}
	return ok
}

// followerProbes reports whether a follower probes a primary in a round
// that is not a sweep: when the leader does not ask for the probes it
// needs, when it asks for this one, and when this replica's last look was
// not of a healthy primary (it has none, the node did not answer, or
// answered in recovery: a primary being promoted), so that a vote it
// sends is never older than a round.
func followerProbes(leaderAsks, watched bool, v nodeView, known bool) bool {
	if !leaderAsks || watched || !known {
		return true
	}
	return v.health != status.Healthy || v.sample == nil || v.sample.InRecovery
}

// probesHere reports whether this replica probes target t in a round
// (sweep: every node).
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

// Watch is a follower's side of the leader's ask: it probes keys at once
// and each round for watchRounds rounds.
func (m *Manager) Watch(keys []string) {
	m.watch.add(keys, m.cfg.Now().Add(watchRounds*m.cfg.ProbeInterval))
}

// watchAsks is the leader's side: the nodes to ask the followers about in
// the next request.
type watchAsks struct {
	mu   sync.Mutex
	keys map[string]bool
	kick chan struct{}
}

func newWatchAsks() *watchAsks {
	return &watchAsks{keys: map[string]bool{}, kick: make(chan struct{}, 1)}
}

// ask adds key to the next request.
func (a *watchAsks) ask(key string) {
	a.mu.Lock()
	a.keys[key] = true
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// take returns the keys asked since the last call, sorted.
func (a *watchAsks) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.keys))
	for k := range a.keys {
		out = append(out, k)
	}
	clear(a.keys)
	slices.Sort(out)
	return out
}

// askWatchers sends the followers what the leader asks them to probe, a
// request at a time to each (what is asked meanwhile goes in the next),
// until ctx ends.
func (m *Manager) askWatchers(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.asks.kick:
		}
		keys := m.asks.take()
		if len(keys) == 0 || !m.store.IsLeader() {
			continue
		}
		m.sendWatch(ctx, keys)
	}
}

// sendWatch asks every other replica to probe keys, at once and for
// watchRounds rounds.
func (m *Manager) sendWatch(ctx context.Context, keys []string) {
	token := m.PeerToken()
	info, err := m.store.Info()
	if token == "" || err != nil {
		return
	}
	body, _ := json.Marshal(api.PeerWatch{Keys: keys})
	var wg sync.WaitGroup
	for _, mem := range info.Members {
		if mem.ID == m.store.ID() || mem.APIAddr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.postWatch(ctx, mem.APIAddr, token, body); err != nil && ctx.Err() == nil {
				m.viewErr.log(m.log, "watch "+mem.ID, "ask replica "+mem.ID+" to probe the nodes this leader sees fail; its votes on them may come late", err)
			}
		}()
	}
	wg.Wait()
}

func (m *Manager) postWatch(ctx context.Context, apiAddr, token string, body []byte) error {
	rctx, cancel := context.WithTimeout(ctx, m.cfg.ProbeInterval)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, strings.TrimSuffix(apiAddr, "/")+"/v1/internal/watch", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(api.ForwardedHeader, m.store.ID())
	resp, err := m.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		detail, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(detail))
	}
	return nil
}

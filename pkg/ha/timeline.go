package ha

import (
	"encoding/json"
	"fmt"

	"github.com/clustermgr/clustermgr/pkg/action"
	"github.com/clustermgr/clustermgr/pkg/collector"
)

// failoverSpec is the spec of a failover of s to target: oldPrimaryGone
// (manual failover), and when target is on an earlier timeline than the
// old primary's last sample, that timeline and the primary's history
// files after target's, which the promotion gives target first (nil when
// the spec says nothing).
func (m *Manager) failoverSpec(s *shardSnap, target string, oldPrimaryGone bool) (json.RawMessage, error) {
	spec := action.FailoverSpec{OldPrimaryGone: oldPrimaryGone}
	if p := s.primary(); p != nil {
		// The primary's timeline and history: its last sample's, or its
		// promotion's record when that is later.
		var ptl uint32
		var files map[string]string
		if s.shard.Promoted == p.Name {
			ptl, files = s.shard.PrimaryTimeline, s.shard.PrimaryHistory
		}
		if pv, ok := m.obs.view(nodeKey(s.cluster.Name, s.shard.Name, p.Name)); ok && pv.sample != nil && !pv.sample.InRecovery && pv.sample.Timeline >= ptl {
			ptl, files = pv.sample.Timeline, pv.sample.HistoryFiles
		}
		tv, ok := m.obs.view(nodeKey(s.cluster.Name, s.shard.Name, target))
		if ok && tv.sample != nil && tv.sample.Timeline < ptl {
			spec.FromTimeline, spec.PrimaryTimeline = tv.sample.Timeline, ptl
			spec.History = map[string]string{}
			for tl := spec.FromTimeline + 1; tl <= spec.PrimaryTimeline; tl++ {
				text, ok := files[collector.HistoryFileName(tl)]
				if !ok {
					// Refused before anything is fenced: the promotion
					// could start a second timeline of this number.
					return nil, conflictf("%s is on timeline %d and the primary %s on %d, but the history of timeline %d is not known (the manager's user may not read pg_wal): promoting %s could start a second timeline %d",
						target, spec.FromTimeline, p.Name, ptl, tl, target, tl)
				}
				spec.History[collector.HistoryFileName(tl)] = text
			}
		}
	}
	if !spec.OldPrimaryGone && spec.PrimaryTimeline == 0 {
		return nil, nil
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode the failover's spec: %w", err)
	}
	return b, nil
}

// recordedTimeline is the primary's timeline and history as its promotion
// recorded them (0 and nil when it did not, or when the primary is not
// the node that promotion made primary).
func recordedTimeline(s *shardSnap) (uint32, []collector.TimelineSwitch) {
	sh := &s.shard
	p := s.primary()
	if sh.PrimaryTimeline == 0 || p == nil || p.Name != sh.Promoted {
		return 0, nil
	}
	h, err := collector.ParseHistory(sh.PrimaryHistory[collector.HistoryFileName(sh.PrimaryTimeline)])
	if err != nil {
		return sh.PrimaryTimeline, nil
	}
	return sh.PrimaryTimeline, h
}

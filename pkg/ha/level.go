package ha

import (
	"context"
	"time"

	"github.com/clustermgr/clustermgr/pkg/meta"
)

// raiseLevel proposes meta.Level, this build's, once every other replica
// of the group says in its view that it applies it too, and returns once
// the group is at it or ctx ends. Until then the group applies the rules
// of its current level, which every replica knows: a rolling upgrade
// raises it when the last replica runs the new build.
func (m *Manager) raiseLevel(ctx context.Context) {
	t := time.NewTicker(max(m.cfg.ProbeInterval, time.Second))
	defer t.Stop()
	for {
		if m.levelRaised(ctx) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// levelRaised reports whether the group is at this build's level,
// proposing it when every replica applies it.
func (m *Manager) levelRaised(ctx context.Context) bool {
	level := 0
	if err := m.store.View(ctx, meta.Stale, func(st *meta.State) error {
		level = st.Level
		return nil
	}); err != nil {
		return false
	}
	if level >= meta.Level {
		return true
	}
	members, _ := m.memberIDs(false) // none when unread: not raised
	if !everyReplicaApplies(members, m.store.ID(), m.obs.peerLevels(), meta.Level) {
		return false
	}
	if err := m.store.Apply(ctx, &meta.SetLevel{Level: meta.Level}); err != nil {
		if ctx.Err() == nil {
			m.log.Warn("raise the group's level", "level", meta.Level, "err", err)
		}
		return false
	}
	m.log.Info("every replica applies this build's rules; the group's level is raised", "level", meta.Level)
	return true
}

// everyReplicaApplies reports whether each of members but self sent a
// fresh view saying that it applies level.
func everyReplicaApplies(members []string, self string, levels map[string]int, level int) bool {
	if len(members) == 0 {
		return false
	}
	for _, id := range members {
		if id != self && levels[id] < level {
			return false
		}
	}
	return true
}

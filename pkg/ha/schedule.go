package ha

import (
	"context"
	"sort"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/clustermgr/clustermgr/pkg/meta"
)

// shardBackups returns a shard's backups, oldest first.
func (m *Manager) shardBackups(ctx context.Context, cluster, shard string) []meta.Backup {
	var out []meta.Backup
	_ = m.store.View(ctx, meta.Stale, func(st *meta.State) error {
		for _, b := range st.Backups {
			if b.Cluster == cluster && b.Shard == shard {
				out = append(out, *b)
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// scheduleBackups takes a shard's scheduled backup when it is due and
// removes backups beyond the retention count. It reports whether it
// started an operation.
func (m *Manager) scheduleBackups(ctx context.Context, s *shardSnap) bool {
	set := s.shard.Settings
	if set.BackupSchedule == "" && set.BackupRetention == 0 {
		return false
	}
	backups := m.shardBackups(ctx, s.cluster.Name, s.shard.Name)
	if set.BackupRetention > 0 && len(backups) > set.BackupRetention {
		for _, b := range backups[:len(backups)-set.BackupRetention] {
			actx, cancel := context.WithTimeout(ctx, time.Minute)
			err := m.agentClient(b.Agent).Purge(actx, b.Path, max(s.shard.Epoch, 1))
			cancel()
			if err != nil {
				m.log.Warn("remove an expired backup", "backup", b.ID, "path", b.Path, "err", err)
				continue
			}
			_ = m.store.Apply(ctx, &meta.DeleteBackup{ID: b.ID})
		}
	}
	if set.BackupSchedule == "" {
		return false
	}
	sched, err := cron.ParseStandard(set.BackupSchedule)
	if err != nil {
		return false
	}
	last := s.shard.CreatedAt
	if len(backups) > 0 {
		last = backups[len(backups)-1].CreatedAt
	}
	if m.cfg.Now().Before(sched.Next(last)) {
		return false
	}
	if _, err := m.Backup(ctx, s.cluster.Name, s.shard.Name); err != nil {
		m.note(ctx, s, "", "scheduled backup not taken: "+err.Error())
		return false
	}
	return true
}

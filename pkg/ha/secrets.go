package ha

import (
	"log/slog"
	"sync"
	"time"

	"github.com/clustermgr/clustermgr/pkg/keyring"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// openPassword returns a cluster's password in clear. A password kept in
// clear by an older version (until the leader seals it) is returned as
// it is.
func (m *Manager) openPassword(c *meta.Cluster) (string, error) {
	pw := c.Settings.PGPassword
	if pw == "" || !keyring.Sealed(pw) {
		return pw, nil
	}
	return m.cfg.Keyring.Open(meta.PasswordPurpose(c.Name), pw)
}

// secretLogEvery is how often one failure to open a secret is logged.
const secretLogEvery = time.Minute

// secretLog logs each secret that cannot be opened at most once a minute.
type secretLog struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (l *secretLog) log(log *slog.Logger, key, msg string, err error) {
	l.mu.Lock()
	now := time.Now()
	due := now.Sub(l.last[key]) >= secretLogEvery
	if due {
		if l.last == nil {
			l.last = map[string]time.Time{}
		}
		l.last[key] = now
	}
	l.mu.Unlock()
	if due {
		log.Error(msg, "err", err)
	}
}

package fleetsim_test

import (
	"context"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/ha"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// TestGroup_RaisesItsLevel: a new group of three replicas of this build
// reaches this build's level once the followers' views say that they
// apply it, and every replica records it.
func TestGroup_RaisesItsLevel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a manager group")
	}
	g := newGroup(t, ha.Config{ProbeInterval: time.Second})
	g.waitFor(30*time.Second, "every replica at level 2", func() bool {
		for _, r := range g.reps {
			level := 0
			_ = r.Store.View(context.Background(), meta.Stale, func(st *meta.State) error {
				level = st.Level
				return nil
			})
			if level != meta.Level {
				return false
			}
		}
		return true
	})
}

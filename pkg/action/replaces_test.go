package action

import (
	"testing"

	"github.com/clustermgr/clustermgr/pkg/meta"
)

// TestReplacesPrimary: the primary's lease and role stop being renewed
// when a failover begins, and when a switchover (or a rolling restart's
// switchover) begins to stop it, not before: until then it takes writes.
// They are renewed again, for the new primary, once it is recorded.
func TestReplacesPrimary(t *testing.T) {
	steps := func(kind string, done int) *meta.Operation {
		op := &meta.Operation{Kind: kind}
		p, _, err := (&Executor{}).plan(op)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range p {
			state := meta.StepPending
			switch {
			case i < done:
				state = meta.StepDone
			case i == done:
				state = meta.StepRunning
			}
			op.Steps = append(op.Steps, meta.OperationStep{Name: s.name, State: state})
		}
		return op
	}
	restart := func(running string) *meta.Operation {
		op := &meta.Operation{Kind: KindRestart}
		state := meta.StepDone
		for _, name := range []string{"restart-pg2", "restart-pg3", "checkpoint", "stop-old-primary", "wait-target-caught-up", "promote", "create-slots", "record-primary", "repoint-standbys"} {
			if name == running {
				op.Steps = append(op.Steps, meta.OperationStep{Name: name, State: meta.StepRunning})
				state = meta.StepPending
				continue
			}
			op.Steps = append(op.Steps, meta.OperationStep{Name: name, State: state})
		}
		return op
	}
	for _, tc := range []struct {
		name string
		op   *meta.Operation
		want bool
	}{
		{"a failover, at once", steps(KindFailover, 0), true},
		{"a manual failover, at once", steps(KindManualFailover, 0), true},
		{"a failover recording the new primary", steps(KindFailover, 3), true},
		{"a failover repointing the standbys", steps(KindFailover, 4), false},
		{"a switchover at its checkpoint step", steps(KindSwitchover, 0), false},
		{"a switchover stopping the old primary", steps(KindSwitchover, 1), true},
		{"a switchover waiting for the target", steps(KindSwitchover, 2), true},
		{"a switchover recording the new primary", steps(KindSwitchover, 5), true},
		{"a switchover repointing the standbys", steps(KindSwitchover, 6), false},
		{"a switchover restarting the old primary", steps(KindSwitchover, 7), false},
		{"a switchover awaiting the standbys", steps(KindSwitchover, 8), false},
		{"a rolling restart restarting a standby", restart("restart-pg3"), false},
		{"a rolling restart at its checkpoint step", restart("checkpoint"), false},
		{"a rolling restart stopping the old primary", restart("stop-old-primary"), true},
		{"a rolling restart recording the new primary", restart("record-primary"), true},
		{"a rolling restart repointing the standbys", restart("repoint-standbys"), false},
		{"a rejoin", steps(KindRejoin, 0), false},
		{"a sync-set", steps(KindSyncSet, 1), false},
	} {
		if got := ReplacesPrimary(tc.op); got != tc.want {
			t.Errorf("%s: %v, want %v (steps %+v)", tc.name, got, tc.want, tc.op.Steps)
		}
	}
}

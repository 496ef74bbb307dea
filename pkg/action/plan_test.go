package action

import (
	"strings"
	"testing"

	"github.com/clustermgr/clustermgr/pkg/meta"
)

// TestMatchPlan: an operation runs the steps it was recorded with. One
// recorded by an earlier version, without the steps added at its plan's
// end since, runs without them (a switchover under way while the
// managers are upgraded one at a time); any other difference is refused.
func TestMatchPlan(t *testing.T) {
	planOf := func(kind string) []step {
		p, _, err := (&Executor{}).plan(&meta.Operation{Kind: kind})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	recorded := func(kind string, names ...string) *meta.Operation {
		op := &meta.Operation{Kind: kind}
		for _, n := range names {
			op.Steps = append(op.Steps, meta.OperationStep{Name: n, State: meta.StepPending})
		}
		return op
	}
	namesOf := func(steps []step) string {
		var out []string
		for _, s := range steps {
			out = append(out, s.name)
		}
		return strings.Join(out, " ")
	}
	switchover := strings.Fields(namesOf(planOf(KindSwitchover)))
	failover := strings.Fields(namesOf(planOf(KindFailover)))
	earlier := switchover[:len(switchover)-1]
	for _, tc := range []struct {
		name string
		op   *meta.Operation
		want string // the steps run, or the error
	}{
		{"a switchover of this version", recorded(KindSwitchover, switchover...), strings.Join(switchover, " ")},
		{"a switchover of the version before", recorded(KindSwitchover, earlier...), "checkpoint stop-old-primary wait-target-caught-up promote create-slots record-primary repoint-standbys restart-old-primary-as-standby"},
		{"a switchover missing a step of its first version", recorded(KindSwitchover, earlier[:len(earlier)-1]...), `operation has 7 steps, plan "switchover" has 9 (written by another version)`},
		{"a switchover with a step renamed", recorded(KindSwitchover, append(append([]string{}, earlier[:7]...), "restart-old", "await-standbys-streaming")...), `operation step 7 is restart-old, plan "switchover" has restart-old-primary-as-standby (written by another version)`},
		{"a failover missing its last step", recorded(KindFailover, failover[:len(failover)-1]...), `operation has 4 steps, plan "failover" has 5 (written by another version)`},
		{"a switchover with a step more", recorded(KindSwitchover, append(append([]string{}, switchover...), "later")...), `operation has 10 steps, plan "switchover" has 9 (written by another version)`},
	} {
		got, err := matchPlan(tc.op, planOf(tc.op.Kind))
		out := namesOf(got)
		if err != nil {
			out = err.Error()
		}
		if out != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, out, tc.want)
		}
	}
}

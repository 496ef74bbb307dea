package decision

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPlanRejoin(t *testing.T) {
	cases := []struct {
		name string
		in   RejoinFacts
		want RejoinPlan
	}{
		{"crashed standby starts as a standby", RejoinFacts{StandbySignal: true, ClusterState: StateArchiveRecovery},
			RejoinPlan{Reason: "it was a standby (in archive recovery): start it as a standby, no rewind"}},
		{"cleanly stopped standby starts as a standby", RejoinFacts{StandbySignal: true, ClusterState: StateShutDownRecovery},
			RejoinPlan{Reason: "it was a standby (shut down in recovery): start it as a standby, no rewind"}},
		{"standby that lost its signal file", RejoinFacts{ClusterState: StateShutDownRecovery},
			RejoinPlan{Reason: "it was a standby (shut down in recovery): start it as a standby, no rewind"}},
		{"crashed former primary is rewound", RejoinFacts{ClusterState: StateInProduction},
			RejoinPlan{Rewind: true, Reason: "it was a primary (in production): rewind it"}},
		{"cleanly stopped former primary is rewound", RejoinFacts{ClusterState: StateShutDown},
			RejoinPlan{Rewind: true, Reason: "it was a primary (shut down): rewind it"}},
		{"running former primary is killed and rewound", RejoinFacts{Running: true, ClusterState: StateInProduction},
			RejoinPlan{Fence: FenceKill, Rewind: true, Reason: "it runs outside standby mode: kill it and rewind it"}},
		{"diverged running standby stops cleanly first", RejoinFacts{Running: true, StandbySignal: true, ClusterState: StateArchiveRecovery, Diverged: true},
			RejoinPlan{Fence: FenceFast, Rewind: true, Reason: "it diverged: stop it cleanly in recovery and rewind it"}},
		{"diverged writable node is killed", RejoinFacts{Running: true, ClusterState: StateInProduction, Diverged: true},
			RejoinPlan{Fence: FenceKill, Rewind: true, Reason: "it diverged and runs outside standby mode: kill it and rewind it"}},
		{"diverged stopped node is rewound", RejoinFacts{StandbySignal: true, ClusterState: StateShutDownRecovery, Diverged: true},
			RejoinPlan{Rewind: true, Reason: "it diverged: rewind it"}},
		{"unreadable control file", RejoinFacts{},
			RejoinPlan{Rewind: true, Reason: "its control file cannot be read: rewind it"}},
		{"former primary with a standby.signal is rewound", RejoinFacts{StandbySignal: true, ClusterState: StateInProduction},
			RejoinPlan{Rewind: true, Reason: "it last ran as a primary (in production): a standby.signal written since does not undo the WAL it wrote; rewind it"}},
		{"running standby is left running", RejoinFacts{Running: true, StandbySignal: true, ClusterState: StateArchiveRecovery},
			RejoinPlan{Reason: "it was a standby (in archive recovery): start it as a standby, no rewind"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if d := cmp.Diff(c.want, PlanRejoin(c.in)); d != "" {
				t.Fatalf("PlanRejoin(%+v) (-want +got):\n%s", c.in, d)
			}
		})
	}
}

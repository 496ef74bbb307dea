package decision

// Control file states a node can be found in (pg_controldata's "Database
// cluster state").
const (
	StateInProduction     = "in production"
	StateShutDown         = "shut down"
	StateShutDownRecovery = "shut down in recovery"
	StateArchiveRecovery  = "in archive recovery"
	StateCrashRecovery    = "in crash recovery"
)

// RejoinFacts is what the agent reports of a node that is to become a
// standby of the primary again.
type RejoinFacts struct {
	Running bool
	// StandbySignal: standby.signal is present.
	StandbySignal bool
	// ClusterState is the control file's state; "" when it could not be
	// read.
	ClusterState string
	// Diverged is set when the node is known not to be able to follow the
	// primary as it is: it accepted writes while declared a standby, or it
	// did not stream from a live primary for too long.
	Diverged bool
}

// Fence modes of a rejoin.
const (
	FenceNone = ""     // leave the server as it runs
	FenceKill = "kill" // a writable server: no clean shutdown, no last write
	FenceFast = "fast" // a standby to rewind: a clean "shut down in recovery"
)

// RejoinPlan is how a node is brought back.
type RejoinPlan struct {
	Fence  string `json:"fence,omitempty"`
	Rewind bool   `json:"rewind"`
	Reason string `json:"reason"`
}

// PlanRejoin chooses how a node becomes a standby again. pg_rewind is for
// a node whose WAL went past the primary's history: a former primary, or
// a standby known to have diverged. A standby that merely stopped or
// crashed holds a prefix of the primary's WAL and is started as a standby:
// rewinding it would run crash recovery outside standby mode and write WAL
// the primary never had.
func PlanRejoin(f RejoinFacts) RejoinPlan {
	wasStandby := f.StandbySignal || f.ClusterState == StateShutDownRecovery || f.ClusterState == StateArchiveRecovery
	switch {
	case f.Diverged && f.Running && !f.StandbySignal:
		return RejoinPlan{Fence: FenceKill, Rewind: true, Reason: "it diverged and runs outside standby mode: kill it and rewind it"}
	case f.Diverged && f.Running:
		return RejoinPlan{Fence: FenceFast, Rewind: true, Reason: "it diverged: stop it cleanly in recovery and rewind it"}
	case f.Diverged:
		return RejoinPlan{Rewind: true, Reason: "it diverged: rewind it"}
	case f.Running && !f.StandbySignal:
		return RejoinPlan{Fence: FenceKill, Rewind: true, Reason: "it runs outside standby mode: kill it and rewind it"}
	case wasStandby:
		return RejoinPlan{Reason: "it was a standby (" + orNone(f.ClusterState) + "): start it as a standby, no rewind"}
	case f.ClusterState == "":
		return RejoinPlan{Rewind: true, Reason: "its control file cannot be read: rewind it"}
	default:
		return RejoinPlan{Rewind: true, Reason: "it was a primary (" + f.ClusterState + "): rewind it"}
	}
}

func orNone(s string) string {
	if s == "" {
		return "state unknown"
	}
	return s
}

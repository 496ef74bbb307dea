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
//
// The control file outweighs standby.signal: a node whose control file
// says it last ran as a primary (in production, or in crash recovery,
// which only a server started without standby mode reaches) is rewound
// even with the signal present. A signal written after it stopped does not
// undo the WAL it wrote as a primary; started as a standby it would replay
// that WAL and be unable to stream from the new primary. Running, such a
// node is writable whatever the signal says, so it is killed.
func PlanRejoin(f RejoinFacts) RejoinPlan {
	ranAsPrimary := f.ClusterState == StateInProduction || f.ClusterState == StateCrashRecovery
	outsideStandbyMode := f.Running && (!f.StandbySignal || ranAsPrimary)
	wasStandby := f.StandbySignal || f.ClusterState == StateShutDownRecovery || f.ClusterState == StateArchiveRecovery
	switch {
	case f.Diverged && outsideStandbyMode:
		return RejoinPlan{Fence: FenceKill, Rewind: true, Reason: "it diverged and runs outside standby mode: kill it and rewind it"}
	case f.Diverged && f.Running:
		return RejoinPlan{Fence: FenceFast, Rewind: true, Reason: "it diverged: stop it cleanly in recovery and rewind it"}
	case f.Diverged:
		return RejoinPlan{Rewind: true, Reason: "it diverged: rewind it"}
	case outsideStandbyMode && f.StandbySignal:
		return RejoinPlan{Fence: FenceKill, Rewind: true, Reason: "it runs as a primary (" + f.ClusterState + ") although standby.signal is present: kill it and rewind it"}
	case outsideStandbyMode:
		return RejoinPlan{Fence: FenceKill, Rewind: true, Reason: "it runs outside standby mode: kill it and rewind it"}
	case ranAsPrimary && f.StandbySignal:
		return RejoinPlan{Rewind: true, Reason: "it last ran as a primary (" + f.ClusterState + "): a standby.signal written since does not undo the WAL it wrote; rewind it"}
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

package status

// ShardState is a shard's state.
type ShardState string

// Shard states.
const (
	ShardHealthy       ShardState = "healthy"
	ShardDegraded      ShardState = "degraded"
	ShardNoPrimary     ShardState = "no-primary"
	ShardFailingOver   ShardState = "failing-over"
	ShardSwitchingOver ShardState = "switching-over"
	ShardPaused        ShardState = "paused"
)

// ShardInput is what the shard state is computed from.
type ShardInput struct {
	Paused          bool   // automatic failover is off
	Operation       string // kind of the running operation, "" if none
	PrimaryHealth   Health // of the declared primary ("" when none is declared)
	Standbys        int
	HealthyStandbys int
	// ArchiveFailing: the primary's WAL archiving fails.
	ArchiveFailing bool
}

// Shard returns the shard state.
func Shard(in ShardInput) ShardState {
	switch {
	case in.Operation == "failover" || in.Operation == "manual-failover":
		return ShardFailingOver
	case in.Operation == "switchover":
		return ShardSwitchingOver
	case in.PrimaryHealth == "" || in.PrimaryHealth == Down:
		if in.Paused {
			return ShardPaused
		}
		return ShardNoPrimary
	case in.Paused:
		return ShardPaused
	case in.PrimaryHealth != Healthy || in.HealthyStandbys < in.Standbys || in.ArchiveFailing:
		return ShardDegraded
	}
	return ShardHealthy
}

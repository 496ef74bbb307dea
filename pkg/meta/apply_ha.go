package meta

import (
	"fmt"
	"time"

	"regexp"
	"sort"
	"strings"
)

// Event kinds written by HA commands.
const (
	EventOperation  = "operation"
	EventPromotion  = "promotion"
	EventSyncSet    = "sync_set"
	EventShardSet   = "shard_updated"
	EventDecision   = "decision"
	EventNodeHealth = "node_health"
	EventShardState = "shard_state"
	// EventRebuild: a node's data directory was replaced by a fresh base
	// backup because pg_rewind could not bring it back.
	EventRebuild = "rebuild"
)

// MaxFinishedOperations bounds the finished operations kept; the oldest
// finished ones are dropped first. Running operations are always kept.
const MaxFinishedOperations = 1000

func applyPutOperation(s *State, c *PutOperation, p pass) error {
	op := c.Operation
	if op.ID == "" {
		return invalid("id", "is required")
	}
	if op.Kind == "" {
		return invalid("kind", "is required")
	}
	if op.Cluster != "" {
		// The shard may not exist yet: provisioning registers it last.
		if _, ok := s.Clusters[op.Cluster]; !ok {
			return notFound("cluster %q does not exist", op.Cluster)
		}
	}
	old, exists := s.Operations[op.ID]
	if exists {
		if err := checkOperationUpdate(old, &op); err != nil {
			return err
		}
	} else if err := checkNewOperation(&op); err != nil {
		return err
	}
	if !exists && !op.Finished() && op.Cluster != "" {
		for _, other := range s.Operations {
			if !other.Finished() && other.Cluster == op.Cluster && other.Shard == op.Shard {
				return conflict("operation %s (%s) is already running on shard %s/%s", other.ID, other.Kind, op.Cluster, op.Shard)
			}
		}
	}
	if p.check {
		return nil
	}
	if exists {
		op.CreatedAt = old.CreatedAt
		// A cancellation, once asked for, stays asked for whatever the
		// executor writes meanwhile.
		op.CancelRequested = op.CancelRequested || old.CancelRequested
	} else {
		op.CreatedAt = c.At
	}
	op.UpdatedAt = c.At
	op.Steps = append([]OperationStep(nil), op.Steps...)
	s.Operations[op.ID] = &op
	switch {
	case !exists:
		s.addEvent(Event{At: c.At, Kind: EventOperation, Cluster: op.Cluster, Shard: op.Shard, Node: op.Target,
			Message: fmt.Sprintf("%s %s started: %s", op.Kind, op.ID, op.Reason)})
	case op.Finished() && !old.Finished():
		s.addFinishedEvent(&op, c.At)
	}
	s.trimOperations()
	return nil
}

// addFinishedEvent records the end of op: its state and why.
func (s *State) addFinishedEvent(op *Operation, at time.Time) {
	msg := fmt.Sprintf("%s %s %s", op.Kind, op.ID, op.State)
	if op.Error != "" {
		msg += ": " + op.Error
	}
	s.addEvent(Event{At: at, Kind: EventOperation, Cluster: op.Cluster, Shard: op.Shard, Node: op.Target, Message: msg})
}

// trimOperations drops the oldest finished operations beyond the bound.
func (s *State) trimOperations() {
	var finished []*Operation
	for _, op := range s.Operations {
		if op.Finished() {
			finished = append(finished, op)
		}
	}
	if len(finished) <= MaxFinishedOperations {
		return
	}
	sort.Slice(finished, func(i, j int) bool {
		if !finished[i].UpdatedAt.Equal(finished[j].UpdatedAt) {
			return finished[i].UpdatedAt.Before(finished[j].UpdatedAt)
		}
		return finished[i].ID < finished[j].ID
	})
	for _, op := range finished[:len(finished)-MaxFinishedOperations] {
		delete(s.Operations, op.ID)
	}
}

var historyFileName = regexp.MustCompile(`^[0-9A-F]{8}\.history$`)

func applySetPrimary(s *State, c *SetPrimary, p pass) error {
	sh, err := s.shard(c.Cluster, c.Shard)
	if err != nil {
		return err
	}
	n, ok := sh.Nodes[c.Node]
	if !ok {
		return notFound("node %q does not exist in shard %s/%s", c.Node, c.Cluster, c.Shard)
	}
	if c.Epoch <= sh.Epoch {
		return conflict("epoch %d is not newer than the shard's epoch %d", c.Epoch, sh.Epoch)
	}
	if len(c.History) > MaxHistoryFiles {
		return invalid("history", "holds %d files; the limit is %d", len(c.History), MaxHistoryFiles)
	}
	for name, text := range c.History {
		if !historyFileName.MatchString(name) || len(text) > MaxHistoryFileBytes {
			return invalid("history", "%q is not a timeline history file name (8 hex digits and .history), or its contents are over %d bytes", name, MaxHistoryFileBytes)
		}
	}
	if p.check {
		return nil
	}
	old := ""
	if p := sh.Primary(); p != nil {
		old = p.Name
	}
	for _, other := range sh.Nodes {
		other.Role = RoleStandby
	}
	n.Role = RolePrimary
	sh.Epoch = c.Epoch
	sh.Promoted, sh.PromotedAt, sh.PrimaryTimeline, sh.PrimaryHistory = c.Node, c.At, c.Timeline, c.History
	sh.SyncSet, sh.SyncPool = nil, nil
	if m := sh.SyncMode(); m == SyncOn || m == SyncStrict {
		for name := range sh.Nodes {
			if name != c.Node {
				sh.SyncPool = append(sh.SyncPool, name)
			}
		}
		sort.Strings(sh.SyncPool)
	}
	s.addEvent(Event{At: c.At, Kind: EventPromotion, Cluster: c.Cluster, Shard: c.Shard, Node: c.Node,
		Message: fmt.Sprintf("%s is the primary at epoch %d (was %s): %s", c.Node, c.Epoch, orNone(old), c.Reason)})
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func applySetSyncSet(s *State, c *SetSyncSet, p pass) error {
	sh, err := s.shard(c.Cluster, c.Shard)
	if err != nil {
		return err
	}
	for _, n := range c.Nodes {
		if _, ok := sh.Nodes[n]; !ok {
			return notFound("node %q does not exist in shard %s/%s", n, c.Cluster, c.Shard)
		}
	}
	set := append([]string(nil), c.Nodes...)
	sort.Strings(set)
	if strings.Join(set, ",") == strings.Join(sh.SyncSet, ",") && len(sh.SyncPool) == 0 {
		return nil
	}
	if p.check {
		return nil
	}
	sh.SyncSet, sh.SyncPool = set, nil
	s.addEvent(Event{At: c.At, Kind: EventSyncSet, Cluster: c.Cluster, Shard: c.Shard,
		Message: fmt.Sprintf("synchronous standby set is [%s]", strings.Join(set, ", "))})
	return nil
}

func applyUpdateShard(s *State, c *UpdateShard, p pass) error {
	sh, err := s.shard(c.Cluster, c.Shard)
	if err != nil {
		return err
	}
	next := sh.Settings
	var changed []string
	if c.Synchronous != nil {
		switch *c.Synchronous {
		case SyncOff, SyncOn, SyncStrict:
		default:
			return invalid("synchronous", "%q is not off, on or strict", *c.Synchronous)
		}
		next.Synchronous = *c.Synchronous
		changed = append(changed, "synchronous="+*c.Synchronous)
	}
	if c.MaxLagOnFailover != nil {
		if *c.MaxLagOnFailover < 0 || *c.MaxLagOnFailover > 1<<40 {
			return invalid("max_lag_on_failover", "%d is out of range 0-%d", *c.MaxLagOnFailover, int64(1<<40))
		}
		next.MaxLagOnFailover = *c.MaxLagOnFailover
		changed = append(changed, fmt.Sprintf("max_lag_on_failover=%d", *c.MaxLagOnFailover))
	}
	if c.BackupSchedule != nil {
		if err := ValidateSchedule("backup_schedule", *c.BackupSchedule, c.At, 0); err != nil {
			return err
		}
		next.BackupSchedule = *c.BackupSchedule
		changed = append(changed, fmt.Sprintf("backup_schedule=%q", *c.BackupSchedule))
	}
	if c.BackupRetention != nil {
		if *c.BackupRetention < 0 || *c.BackupRetention > 10000 {
			return invalid("backup_retention", "%d is out of range 0-10000", *c.BackupRetention)
		}
		next.BackupRetention = *c.BackupRetention
		changed = append(changed, fmt.Sprintf("backup_retention=%d", *c.BackupRetention))
	}
	var reset []string
	paramsChanged := false
	if c.Parameters != nil {
		params, r, what, err := nextParameters(sh, c.Parameters)
		if err != nil {
			return err
		}
		if what != nil {
			next.Parameters, reset, paramsChanged = params, r, true
			changed = append(changed, "parameters "+strings.Join(what, ", "))
		}
	}
	if len(changed) == 0 {
		return nil
	}
	if p.check {
		return nil
	}
	sh.Settings = next
	if paramsChanged {
		sh.ParamsVersion++
		sh.ParamsReset = reset
	}
	s.addEvent(Event{At: c.At, Kind: EventShardSet, Cluster: c.Cluster, Shard: c.Shard, Message: "shard settings changed: " + strings.Join(changed, ", ")})
	return nil
}

func applyRecordEvent(s *State, c *RecordEvent, p pass) error {
	if c.Event.Kind == "" || c.Event.Message == "" {
		return invalid("event", "kind and message are required")
	}
	if p.check {
		return nil
	}
	e := c.Event
	e.At = c.At
	s.addEvent(e)
	return nil
}

// EventBackup is the kind of backup events.
const EventBackup = "backup"

func applyPutBackup(s *State, c *PutBackup, p pass) error {
	b := c.Backup
	if b.ID == "" {
		return invalid("id", "is required")
	}
	if _, err := s.shard(b.Cluster, b.Shard); err != nil {
		return err
	}
	if _, ok := s.Backups[b.ID]; ok {
		return conflict("backup %q already exists", b.ID)
	}
	if p.check {
		return nil
	}
	b.CreatedAt = c.At
	s.Backups[b.ID] = &b
	s.addEvent(Event{At: c.At, Kind: EventBackup, Cluster: b.Cluster, Shard: b.Shard, Node: b.Node,
		Message: fmt.Sprintf("backup %s of %s: %d bytes, WAL %s-%s on timeline %d, verified", b.ID, b.Node, b.SizeBytes, b.StartLSN, b.StopLSN, b.Timeline)})
	return nil
}

func applyDeleteBackup(s *State, c *DeleteBackup, p pass) error {
	b, ok := s.Backups[c.ID]
	if !ok {
		return nil
	}
	if p.check {
		return nil
	}
	delete(s.Backups, c.ID)
	s.addEvent(Event{At: c.At, Kind: EventBackup, Cluster: b.Cluster, Shard: b.Shard, Node: b.Node, Message: fmt.Sprintf("backup %s removed", b.ID)})
	return nil
}

func applySetPeerSecret(s *State, c *SetPeerSecret, p pass) error {
	if len(c.Secret) < 32 {
		return invalid("secret", "is shorter than 32 characters")
	}
	if err := checkSealed(p, "secret", c.Secret); err != nil {
		return err
	}
	if p.check {
		return nil
	}
	if s.PeerSecret == "" {
		s.PeerSecret = c.Secret
		s.addEvent(Event{At: c.At, Kind: EventPeerSecret, Message: "the group generated the secret that authenticates followers' views"})
	}
	return nil
}

func applyCancelOperation(s *State, c *CancelOperation, p pass) error {
	op, err := s.runningOperation(c.ID)
	if err != nil {
		return err
	}
	if p.check {
		return nil
	}
	if !op.CancelRequested {
		op.CancelRequested = true
		op.UpdatedAt = c.At
		s.addEvent(Event{At: c.At, Kind: EventOperation, Cluster: op.Cluster, Shard: op.Shard, Node: op.Target,
			Message: fmt.Sprintf("%s %s: cancellation requested", op.Kind, op.ID)})
	}
	return nil
}

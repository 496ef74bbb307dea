package meta

import (
	"fmt"
	"sort"
	"time"
)

// A scheduled switchover: recorded in Raft, so that it is listed by every
// replica and survives a change of leader; the leader starts it when its
// time comes, or refuses it, saying why, when the shard is not fit then.

// Schedule states.
const (
	ScheduleWaiting   = "scheduled"
	ScheduleStarted   = "started"
	ScheduleRefused   = "refused"
	ScheduleCancelled = "cancelled"
)

// EventSchedule: a scheduled switchover was recorded, started, refused or
// cancelled.
const EventSchedule = "schedule"

// Bounds of schedules.
const (
	// MaxScheduleAhead is how far ahead a switchover may be scheduled.
	MaxScheduleAhead = 366 * 24 * time.Hour
	// MaxSchedules bounds the schedules kept; the oldest finished ones go
	// first.
	MaxSchedules = 500
)

// Schedule is a switchover to run at a time.
type Schedule struct {
	ID      string    `json:"id"`
	Cluster string    `json:"cluster"`
	Shard   string    `json:"shard"`
	To      string    `json:"to,omitempty"` // the best standby then when empty
	At      time.Time `json:"at"`
	State   string    `json:"state"`
	// Reason says why it was refused or cancelled.
	Reason string `json:"reason,omitempty"`
	// Operation is the switchover it started.
	Operation string    `json:"operation,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// PutSchedule records a new scheduled switchover.
type PutSchedule struct {
	Stamp
	Schedule Schedule `json:"schedule"`
}

// Type implements Command.
func (*PutSchedule) Type() CommandType { return CmdPutSchedule }

// SetSchedule moves a waiting schedule to started (with its operation),
// refused or cancelled (with a reason).
type SetSchedule struct {
	Stamp
	ID        string `json:"id"`
	State     string `json:"state"`
	Reason    string `json:"reason,omitempty"`
	Operation string `json:"operation,omitempty"`
}

// Type implements Command.
func (*SetSchedule) Type() CommandType { return CmdSetSchedule }

func applyPutSchedule(s *State, c *PutSchedule, p pass) error {
	sc := c.Schedule
	if sc.ID == "" {
		return invalid("id", "is required")
	}
	if _, ok := s.Schedules[sc.ID]; ok {
		return conflict("schedule %s already exists", sc.ID)
	}
	waiting := 0
	for _, o := range s.Schedules {
		if o.State == ScheduleWaiting {
			waiting++
		}
	}
	if waiting >= MaxSchedules {
		return conflict("%d switchovers are scheduled already; cancel some first", waiting)
	}
	sh, err := s.shard(sc.Cluster, sc.Shard)
	if err != nil {
		return err
	}
	if sc.To != "" {
		n, ok := sh.Nodes[sc.To]
		if !ok {
			return notFound("node %q is not in shard %s/%s", sc.To, sc.Cluster, sc.Shard)
		}
		if n.Role == RolePrimary {
			return conflict("%s is already the primary", sc.To)
		}
	}
	switch {
	case !sc.At.After(c.At):
		return invalid("at", "%s is not in the future (now %s)", sc.At.UTC().Format(time.RFC3339), c.At.UTC().Format(time.RFC3339))
	case sc.At.Sub(c.At) > MaxScheduleAhead:
		return invalid("at", "%s is more than a year ahead", sc.At.UTC().Format(time.RFC3339))
	}
	if p.check {
		return nil
	}
	sc.State, sc.Reason, sc.Operation = ScheduleWaiting, "", ""
	sc.At = sc.At.UTC()
	sc.CreatedAt, sc.UpdatedAt = c.At, c.At
	if s.Schedules == nil {
		s.Schedules = map[string]*Schedule{}
	}
	s.Schedules[sc.ID] = &sc
	s.pruneSchedules()
	to := sc.To
	if to == "" {
		to = "the best standby"
	}
	s.addEvent(Event{At: c.At, Kind: EventSchedule, Cluster: sc.Cluster, Shard: sc.Shard, Node: sc.To,
		Message: fmt.Sprintf("switchover %s to %s scheduled at %s", sc.ID, to, sc.At.Format(time.RFC3339))})
	return nil
}

func applySetSchedule(s *State, c *SetSchedule, p pass) error {
	sc, ok := s.Schedules[c.ID]
	if !ok {
		return notFound("schedule %q does not exist", c.ID)
	}
	switch c.State {
	case ScheduleStarted:
		if c.Operation == "" {
			return invalid("operation", "is required to start a schedule")
		}
	case ScheduleRefused, ScheduleCancelled:
		if len(c.Reason) > 2000 {
			return invalid("reason", "is longer than 2000 bytes")
		}
	default:
		return invalid("state", "%q is not started, refused or cancelled", c.State)
	}
	if sc.State != ScheduleWaiting {
		if sc.State == ScheduleStarted && c.State == ScheduleStarted && sc.Operation == c.Operation {
			return nil // a new leader records what an earlier one did
		}
		return conflict("schedule %s is already %s", c.ID, sc.State)
	}
	if p.check {
		return nil
	}
	next := *sc
	next.State, next.Reason, next.Operation, next.UpdatedAt = c.State, c.Reason, c.Operation, c.At
	s.Schedules[c.ID] = &next
	msg := fmt.Sprintf("scheduled switchover %s %s", c.ID, c.State)
	switch {
	case c.State == ScheduleStarted:
		msg += ": operation " + c.Operation
	case c.Reason != "":
		msg += ": " + c.Reason
	}
	s.addEvent(Event{At: c.At, Kind: EventSchedule, Cluster: sc.Cluster, Shard: sc.Shard, Node: sc.To, Message: msg})
	return nil
}

// pruneSchedules drops the oldest finished schedules beyond
// MaxSchedules.
func (s *State) pruneSchedules() {
	if len(s.Schedules) <= MaxSchedules {
		return
	}
	var done []*Schedule
	for _, sc := range s.Schedules {
		if sc.State != ScheduleWaiting {
			done = append(done, sc)
		}
	}
	sort.Slice(done, func(i, j int) bool {
		return done[i].UpdatedAt.Before(done[j].UpdatedAt) || done[i].UpdatedAt.Equal(done[j].UpdatedAt) && done[i].ID < done[j].ID
	})
	for _, sc := range done {
		if len(s.Schedules) <= MaxSchedules {
			return
		}
		delete(s.Schedules, sc.ID)
	}
}

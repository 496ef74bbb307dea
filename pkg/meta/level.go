package meta

import "fmt"

// Level is the version of the rules this build applies commands by. A
// rule that changes what a command does to the state (not only which
// commands there are) is a new level: a group applies it only once every
// replica runs a build that knows it, so that every replica of a group in
// a rolling upgrade applies the same log to the same state.
//
//   - 1: every build before levels; the event history keeps the newest
//     MaxEvents events.
//   - 2: the event history is kept per shard (see compactEvents).
const Level = 2

// EventLevel is the kind of the event that records a new level.
const EventLevel = "level"

// SetLevel raises the group's level (State.Level). The leader proposes it
// once every replica has said that it applies the level; a replica of an
// older build stops at it (an unknown command) rather than apply what
// follows by other rules.
type SetLevel struct {
	Stamp
	Level int `json:"level"`
}

// Type implements Command.
func (*SetLevel) Type() CommandType { return CmdSetLevel }

func applySetLevel(s *State, c *SetLevel, p pass) error {
	if c.Level < 1 || c.Level > Level {
		return invalid("level", "%d is not a level this build applies (1-%d)", c.Level, Level)
	}
	if c.Level <= s.level() || p.check {
		return nil
	}
	s.Level = c.Level
	s.addEvent(Event{At: c.At, Kind: EventLevel, Message: fmt.Sprintf("every manager replica applies level %d: %s", c.Level, levelNews(c.Level))})
	return nil
}

// levelNews says what a level changes.
func levelNews(level int) string {
	switch level {
	case 2:
		return "the event history is kept per shard, so that a busy shard no longer evicts the others' history"
	}
	return "no change of rules"
}

// level is the state's level (1 for a state from before levels).
func (s *State) level() int { return max(s.Level, 1) }

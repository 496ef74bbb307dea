package meta

import (
	"errors"
	"fmt"
)

// ErrorKind classifies errors so that the API can map them to a status code.
type ErrorKind int

// Error kinds.
const (
	KindInvalid  ErrorKind = iota + 1 // bad input: 400
	KindNotFound                      // 404
	KindConflict                      // duplicate or conflicting state: 409
)

// Error is a typed error from validation or from applying a command. The FSM
// returns it deterministically, so every replica agrees on it.
type Error struct {
	Kind  ErrorKind
	Field string // the offending input field, when there is one
	Msg   string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Msg
	}
	return e.Msg
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *Error {
	return &Error{Kind: KindNotFound, Msg: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) *Error {
	return &Error{Kind: KindConflict, Msg: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of a *Error anywhere in err's chain, or 0.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// NotLeaderError is returned for writes and leader reads on a follower. It
// carries what a caller needs to retry at the leader.
type NotLeaderError struct {
	LeaderID      string // empty when no leader is known
	LeaderAPIAddr string // empty when the leader has not recorded its API address yet
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "not the leader, and no leader is known"
	}
	return fmt.Sprintf("not the leader; leader is %s (api %q)", e.LeaderID, e.LeaderAPIAddr)
}

// IsNotLeader reports whether err is a *NotLeaderError.
func IsNotLeader(err error) bool {
	var e *NotLeaderError
	return errors.As(err, &e)
}

package fencing

import (
	"context"
	"fmt"
)

// Token orders the commands sent to one data directory. Term is the Raft
// term of the manager leader that sent the command; Epoch is the shard's
// epoch, raised by every promotion.
type Token struct {
	Term  uint64 `json:"term"`
	Epoch uint64 `json:"epoch"`
}

// OlderThan reports whether t must be refused once seen has been
// accepted: its term or its epoch is below seen's. A deposed leader's
// term is below its successor's; an operation's epoch is below the
// promotion that superseded it.
func (t Token) OlderThan(seen Token) bool {
	return t.Term < seen.Term || t.Epoch < seen.Epoch
}

// Join is the newest of t and seen in each part: what an agent keeps after
// accepting t.
func (t Token) Join(seen Token) Token {
	return Token{Term: max(t.Term, seen.Term), Epoch: max(t.Epoch, seen.Epoch)}
}

func (t Token) String() string { return fmt.Sprintf("term %d, epoch %d", t.Term, t.Epoch) }

type termKey struct{}

// WithTerm returns ctx carrying the Raft term of the leadership that owns
// the work done under it.
func WithTerm(ctx context.Context, term uint64) context.Context {
	return context.WithValue(ctx, termKey{}, term)
}

// Term is the leader term ctx carries, 0 when none.
func Term(ctx context.Context) uint64 {
	t, _ := ctx.Value(termKey{}).(uint64)
	return t
}

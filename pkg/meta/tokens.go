package meta

import (
	"fmt"
	"time"

	"github.com/clustermgr/clustermgr/pkg/auth"
)

// MaxAudit bounds the audit trail kept in the replicated state (part of
// the state machine's definition, like MaxEvents).
const MaxAudit = 10000

// MaxTokens bounds how many API tokens the group keeps.
const MaxTokens = 1000

// Event kinds written by token commands.
const (
	EventTokenCreated = "token_created"
	EventTokenRevoked = "token_revoked"
)

// Token is an API credential: its secret is shown once, at creation; the
// state keeps only its hash.
type Token struct {
	Name      string    `json:"name"`
	Scope     string    `json:"scope"`
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// AuditRecord is one accepted API mutation: who (the token's name), from
// where, what, and how it ended.
type AuditRecord struct {
	ID     uint64    `json:"id"`
	At     time.Time `json:"at"`
	Token  string    `json:"token"`
	Remote string    `json:"remote"`
	// Via is the replica that forwarded the request to the leader, and
	// ForwardedFor the client address it reported.
	Via          string `json:"via,omitempty"`
	ForwardedFor string `json:"forwarded_for,omitempty"`
	Method       string `json:"method"`
	Path         string `json:"path"`
	Status       int    `json:"status"`
	Outcome      string `json:"outcome,omitempty"`
}

// PutToken records a new token. A Bootstrap token is recorded only while
// the group has no token at all, so that every replica may propose the
// first admin token and the first one wins.
type PutToken struct {
	Stamp
	Token     Token `json:"token"`
	Bootstrap bool  `json:"bootstrap,omitempty"`
}

// Type implements Command.
func (*PutToken) Type() CommandType { return CmdPutToken }

// RevokeToken forgets a token.
type RevokeToken struct {
	Stamp
	Name string `json:"name"`
}

// Type implements Command.
func (*RevokeToken) Type() CommandType { return CmdRevokeToken }

// RecordAudit appends to the audit trail.
type RecordAudit struct {
	Stamp
	Record AuditRecord `json:"record"`
}

// Type implements Command.
func (*RecordAudit) Type() CommandType { return CmdRecordAudit }

// ValidateToken checks a token before it is proposed.
func ValidateToken(t Token) error {
	if err := ValidateName("name", t.Name); err != nil {
		return err
	}
	if _, err := auth.ParseScope(t.Scope); err != nil {
		return invalid("scope", "%v", err)
	}
	if !auth.ValidHash(t.Hash) {
		return invalid("hash", "is not a SHA-256 hash in lowercase hex")
	}
	return nil
}

// TokenByHash returns the token whose secret hashes to hash, or nil.
func (s *State) TokenByHash(hash string) *Token {
	for _, t := range s.Tokens {
		if t.Hash == hash {
			return t
		}
	}
	return nil
}

func applyPutToken(s *State, c *PutToken, p pass) error {
	if c.Bootstrap && len(s.Tokens) > 0 {
		return nil
	}
	if err := ValidateToken(c.Token); err != nil {
		return err
	}
	if _, ok := s.Tokens[c.Token.Name]; ok {
		return conflict("token %s already exists; revoke it first", c.Token.Name)
	}
	if s.TokenByHash(c.Token.Hash) != nil {
		return conflict("a token with this secret already exists")
	}
	if len(s.Tokens) >= MaxTokens {
		return conflict("the group keeps at most %d tokens; revoke one first", MaxTokens)
	}
	if p.check {
		return nil
	}
	t := c.Token
	t.CreatedAt = c.At.UTC()
	s.Tokens[t.Name] = &t
	s.addEvent(Event{At: c.At, Kind: EventTokenCreated, Message: fmt.Sprintf("API token %s (%s) created by %s", t.Name, t.Scope, t.CreatedBy)})
	return nil
}

func applyRevokeToken(s *State, c *RevokeToken, p pass) error {
	t, ok := s.Tokens[c.Name]
	if !ok {
		return notFound("token %s not found", c.Name)
	}
	if t.Scope == auth.Admin.String() {
		admins := 0
		for _, o := range s.Tokens {
			if o.Scope == auth.Admin.String() {
				admins++
			}
		}
		if admins == 1 {
			return conflict("token %s is the last admin token: create another admin token before revoking it", c.Name)
		}
	}
	if p.check {
		return nil
	}
	delete(s.Tokens, c.Name)
	s.addEvent(Event{At: c.At, Kind: EventTokenRevoked, Message: fmt.Sprintf("API token %s revoked", c.Name)})
	return nil
}

func applyRecordAudit(s *State, c *RecordAudit, p pass) error {
	if p.check {
		return nil
	}
	r := c.Record
	r.ID = s.NextAuditID
	s.NextAuditID++
	r.At = c.At.UTC()
	s.Audit = appendBounded(s.Audit, r, MaxAudit)
	return nil
}

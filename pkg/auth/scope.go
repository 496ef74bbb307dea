package auth

import "fmt"

// Scope is what a token may do. Each scope includes the ones below it.
type Scope int

// Scopes, smallest first. Open marks an endpoint that needs no token.
const (
	Open Scope = iota
	Read
	Operate
	Admin
)

// String returns the scope's name.
func (s Scope) String() string {
	switch s {
	case Open:
		return "open"
	case Read:
		return "read"
	case Operate:
		return "operate"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("scope(%d)", int(s))
}

// Covers reports whether a token of scope s may do what needs need.
func (s Scope) Covers(need Scope) bool { return s >= need }

// ParseScope parses a token's scope: read, operate or admin.
func ParseScope(v string) (Scope, error) {
	switch v {
	case "read":
		return Read, nil
	case "operate":
		return Operate, nil
	case "admin":
		return Admin, nil
	}
	return Open, fmt.Errorf("%q is not a scope (read, operate or admin)", v)
}

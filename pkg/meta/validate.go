package meta

import (
	"fmt"
	"net"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/clustermgr/clustermgr/pkg/keyring"
	"github.com/robfig/cron/v3"
)

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// ValidateName checks that v is a lowercase DNS label. field names the input
// field in the error.
func ValidateName(field, v string) error {
	if v == "" {
		return invalid(field, "is required")
	}
	if len(v) > 63 {
		return invalid(field, "is %d characters long; a name has at most 63 ([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)", len(v))
	}
	if !nameRE.MatchString(v) {
		return invalid(field, "%q is not a lowercase DNS label ([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)", v)
	}
	return nil
}

// ValidatePort checks a TCP port number.
func ValidatePort(field string, p int) error {
	if p < 1 || p > 65535 {
		return invalid(field, "%d is out of range 1-65535", p)
	}
	return nil
}

// ValidateRole checks a declared node role.
func ValidateRole(field string, r Role) error {
	switch r {
	case RolePrimary, RoleStandby:
		return nil
	case "":
		return invalid(field, "is required (primary or standby)")
	}
	return invalid(field, "%q is not a role (primary or standby)", string(r))
}

// ValidateHost checks a host name or IP address.
func ValidateHost(field, h string) error {
	if h == "" {
		return invalid(field, "is required")
	}
	if net.ParseIP(h) != nil {
		return nil
	}
	if len(h) > 253 {
		return invalid(field, "is longer than 253 characters")
	}
	for _, label := range strings.Split(h, ".") {
		if !hostLabelRE.MatchString(label) {
			return invalid(field, "%q is not a host name or IP address", h)
		}
	}
	return nil
}

var hostLabelRE = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?$`)

// knownTag reports whether the manager understands a node tag.
func knownTag(t string) bool { return t == TagNoFailover }

// ValidateNode checks every field of a node; prefix is the field path of the
// node in the request (for example "nodes[1]").
func ValidateNode(prefix string, n *Node) error {
	f := func(name string) string {
		if prefix == "" {
			return name
		}
		return prefix + "." + name
	}
	if err := ValidateName(f("name"), n.Name); err != nil {
		return err
	}
	if err := ValidateHost(f("host"), n.Host); err != nil {
		return err
	}
	if err := ValidatePort(f("port"), n.Port); err != nil {
		return err
	}
	if err := ValidateRole(f("role"), n.Role); err != nil {
		return err
	}
	if n.Agent != "" {
		if err := ValidateName(f("agent"), n.Agent); err != nil {
			return invalid(f("agent"), "%q is not the name of a registered agent (POST /v1/agents)", Truncate(n.Agent, 100))
		}
	}
	if n.DataDir != "" && !strings.HasPrefix(n.DataDir, "/") {
		return invalid(f("data_dir"), "%q is not an absolute path", n.DataDir)
	}
	// One spelling per directory, so that (agent, data_dir) is unique.
	if n.DataDir != "" && path.Clean(n.DataDir) != n.DataDir {
		return invalid(f("data_dir"), "%q is not a clean path (%q)", n.DataDir, path.Clean(n.DataDir))
	}
	if n.Priority < 0 || n.Priority > 1000 {
		return invalid(f("priority"), "%d is out of range 0-1000", n.Priority)
	}
	seen := map[string]bool{}
	for i, t := range n.Tags {
		if !knownTag(t) {
			return invalid(fmt.Sprintf("%s[%d]", f("tags"), i), "unknown tag %q (known: %s)", t, TagNoFailover)
		}
		if seen[t] {
			return invalid(fmt.Sprintf("%s[%d]", f("tags"), i), "duplicate tag %q", t)
		}
		seen[t] = true
	}
	return nil
}

// ValidateSettings checks cluster settings.
func ValidateSettings(prefix string, s ClusterSettings) error {
	if s.PGUser != "" && len(s.PGUser) > 63 {
		return invalid(prefix+"pg_user", "is longer than 63 characters")
	}
	if len(s.ReplicationUser) > 63 {
		return invalid(prefix+"replication_user", "is longer than 63 characters")
	}
	// Users and the password go into conninfo strings and configuration
	// files: a control character there could start a new line of either.
	for _, f := range []struct{ name, v string }{{"pg_user", s.PGUser}, {"replication_user", s.ReplicationUser}} {
		if strings.ContainsFunc(f.v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return invalid(prefix+f.name, "holds a control character")
		}
	}
	if keyring.Sealed(s.PGPassword) {
		if len(s.PGPassword) > MaxSealedLen {
			return invalid(prefix+"pg_password", "is longer than %d characters sealed", MaxSealedLen)
		}
		return nil
	}
	return ValidatePassword(prefix+"pg_password", s.PGPassword)
}

// MaxPasswordLen bounds a cluster's password; MaxSealedLen the same
// password sealed.
const (
	MaxPasswordLen = 1024
	MaxSealedLen   = 2048
)

// ValidatePassword checks a password in clear, before it is sealed.
func ValidatePassword(field, pw string) error {
	if strings.ContainsFunc(pw, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return invalid(field, "holds a control character")
	}
	if len(pw) > MaxPasswordLen {
		return invalid(field, "is longer than %d characters", MaxPasswordLen)
	}
	return nil
}

// PasswordPurpose is what a cluster's sealed password is bound to.
func PasswordPurpose(cluster string) string { return "cluster/" + cluster + "/pg_password" }

// PeerSecretPurpose is what the sealed peer secret is bound to.
const PeerSecretPurpose = "peer_secret"

// checkSealed refuses, before a command is proposed, a secret that is not
// sealed: nothing in clear reaches the log. (Entries written before
// secrets were sealed still apply; the leader seals what they left.)
func checkSealed(p pass, field, v string) error {
	if p.check && v != "" && !keyring.Sealed(v) {
		return invalid(field, "must be sealed with the group's secret key before it is proposed")
	}
	return nil
}

// ScheduleInterval is the longest time between two firings of a backup
// schedule over its next 60 firings from at (0 for an expression that
// does not parse or fires at most once).
func ScheduleInterval(expr string, at time.Time) time.Duration {
	sched, err := cron.ParseStandard(expr)
	if err != nil {
		return 0
	}
	var longest time.Duration
	next := sched.Next(at)
	for i := 0; i < 60 && !next.IsZero(); i++ {
		after := sched.Next(next)
		if after.IsZero() {
			break
		}
		longest = max(longest, after.Sub(next))
		next = after
	}
	return longest
}

// ValidateSchedule checks a backup schedule, a cron expression: it must
// fire (from at on; "0 0 30 2 *" never does) and, when minInterval is
// set, never twice within minInterval over its next 500 firings.
func ValidateSchedule(field, expr string, at time.Time, minInterval time.Duration) error {
	if expr == "" {
		return nil
	}
	sched, err := cron.ParseStandard(expr)
	if err != nil {
		return invalid(field, "%q is not a cron expression: %v", expr, err)
	}
	next := sched.Next(at)
	if next.IsZero() {
		return invalid(field, "%q never fires", expr)
	}
	if minInterval <= 0 {
		return nil
	}
	for i := 0; i < 500; i++ {
		after := sched.Next(next)
		if after.IsZero() {
			return nil
		}
		if gap := after.Sub(next); gap < minInterval {
			return invalid(field, "%q fires %v apart (%s and %s); backups must be at least %v apart", expr, gap,
				next.UTC().Format(time.RFC3339), after.UTC().Format(time.RFC3339), minInterval)
		}
		next = after
	}
	return nil
}

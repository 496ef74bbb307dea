package meta

import (
	"fmt"
	"net"
	"regexp"
	"strings"
)

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// ValidateName checks that v is a lowercase DNS label. field names the input
// field in the error.
func ValidateName(field, v string) error {
	if v == "" {
		return invalid(field, "is required")
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
	if n.Agent != "" && !strings.HasPrefix(n.Agent, "http://") && !strings.HasPrefix(n.Agent, "https://") {
		return invalid(f("agent"), "%q is not an http(s) URL", n.Agent)
	}
	if n.DataDir != "" && !strings.HasPrefix(n.DataDir, "/") {
		return invalid(f("data_dir"), "%q is not an absolute path", n.DataDir)
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
	return nil
}

package pgctl

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Node is where and as whom the manager connects to a node.
type Node struct {
	Host     string
	Port     int
	User     string
	Password string
	Database string
	App      string        // application_name
	Timeout  time.Duration // connect timeout; 0 is none
}

// NodeConfig is the connection configuration for n, with BoundMessages.
// It owes nothing to the manager's own PG* environment (PGHOST,
// PGSSLMODE, PGTARGETSESSIONATTRS, PGOPTIONS, ...): that belongs to the
// operator's psql in the same shell. Left to it, a PGHOST made every
// connection that fell back from TLS go to PGHOST instead of the node.
// TLS is tried first and a server that refuses it is spoken to in clear
// text, on the same address (libpq's sslmode=prefer). A password left
// empty may still come from the manager's ~/.pgpass, for that host and
// port only.
func NodeConfig(n Node) (*pgconn.Config, error) {
	cfg, err := pgconn.ParseConfig(n.conninfo())
	if err != nil {
		return nil, n.parseError(err)
	}
	n.finish(cfg)
	return cfg, nil
}

// NodeConnConfig is NodeConfig for a pgx connection.
func NodeConnConfig(n Node) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(n.conninfo())
	if err != nil {
		return nil, n.parseError(err)
	}
	n.finish(&cfg.Config)
	return cfg, nil
}

// conninfo sets every setting the environment could, the password aside.
func (n Node) conninfo() string {
	settings := []struct{ key, value string }{
		{"host", n.Host},
		{"port", strconv.Itoa(n.Port)},
		{"user", n.User},
		{"password", ""}, // set by finish: not through the string's escapes
		{"dbname", n.Database},
		{"application_name", n.App},
		{"connect_timeout", "0"},
		{"sslmode", "prefer"},
		{"sslkey", ""},
		{"sslcert", ""},
		{"sslrootcert", ""},
		{"sslpassword", ""},
		{"sslsni", "1"},
		{"sslnegotiation", "postgres"},
		{"target_session_attrs", "any"},
		{"options", ""},
	}
	quote := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	var b strings.Builder
	for i, s := range settings {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s.key)
		b.WriteString("='")
		b.WriteString(quote.Replace(s.value))
		b.WriteString("'")
	}
	return b.String()
}

// parseError names the node and what did not parse.
func (n Node) parseError(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		err = pe.Unwrap()
	}
	return fmt.Errorf("connection settings for %s:%d: %w", n.Host, n.Port, err)
}

func (n Node) finish(cfg *pgconn.Config) {
	for _, p := range []string{"options", "timezone"} {
		delete(cfg.RuntimeParams, p) // an empty options, and PGTZ
	}
	if n.Password != "" {
		cfg.Password = n.Password
	}
	cfg.ConnectTimeout = n.Timeout
	BoundMessages(cfg)
}

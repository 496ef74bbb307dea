package pgctl

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestNodeConfig_IgnoresEnvironment: what the manager connects to, and how,
// comes from the node and nothing else.
func TestNodeConfig_IgnoresEnvironment(t *testing.T) {
	for k, v := range map[string]string{
		"PGHOST": "10.9.9.9", "PGPORT": "6432", "PGDATABASE": "other", "PGUSER": "mallory",
		"PGPASSWORD": "env-secret", "PGAPPNAME": "psql", "PGCONNECT_TIMEOUT": "99",
		"PGSSLMODE": "disable", "PGSSLCERT": "/nonexistent/cert", "PGTARGETSESSIONATTRS": "read-write",
		"PGTZ": "Asia/Tokyo", "PGOPTIONS": "-c statement_timeout=1",
	} {
		t.Setenv(k, v)
	}
	type fallback struct {
		Host string
		Port uint16
		TLS  bool
	}
	type view struct {
		Host, User, Password, Database string
		Port                           uint16
		Runtime                        map[string]string
		Fallbacks                      []fallback
		TLS, Validates                 bool
		Timeout                        time.Duration
	}
	for _, pw := range []string{"", `s3cr'et\`, `a\'b c`} {
		cfg, err := NodeConfig(Node{Host: "127.0.0.7", Port: 5433, User: `o'brien`, Password: pw, Database: "postgres",
			App: "clustermgr m1", Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		got := view{Host: cfg.Host, Port: cfg.Port, User: cfg.User, Password: cfg.Password, Database: cfg.Database,
			Runtime: cfg.RuntimeParams, TLS: cfg.TLSConfig != nil, Validates: cfg.ValidateConnect != nil, Timeout: cfg.ConnectTimeout}
		for _, f := range cfg.Fallbacks {
			got.Fallbacks = append(got.Fallbacks, fallback{f.Host, f.Port, f.TLSConfig != nil})
		}
		want := view{Host: "127.0.0.7", Port: 5433, User: `o'brien`, Password: pw, Database: "postgres",
			Runtime: map[string]string{"application_name": "clustermgr m1"}, TLS: true, Timeout: 2 * time.Second,
			Fallbacks: []fallback{{"127.0.0.7", 5433, false}}}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("password %q: config (-want +got):\n%s", pw, d)
		}
		if cfg.BuildFrontend == nil {
			t.Error("messages are not bounded")
		}
	}
}

// TestNodeConfig_ErrorHidesPassword: a setting that does not parse is
// named; the password is not.
func TestNodeConfig_ErrorHidesPassword(t *testing.T) {
	_, err := NodeConfig(Node{Host: "db1", Port: 99999, User: "postgres", Password: "hunter2-secret"})
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "db1:99999") {
		t.Fatalf("error %v", err)
	}
}

package agent_test

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/internal/tlstest"
	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/tlsconf"
)

// TestAgent_MutualTLS: an agent serving mutual TLS answers a manager with
// a certificate from the group's CA, and refuses one without a
// certificate or with one from another CA.
func TestAgent_MutualTLS(t *testing.T) {
	e := pgtest.NewEnv(t)
	ca := tlstest.NewCA(t, "group")
	cert, key := ca.Issue("agent")
	agentTLS, err := tlsconf.Load(cert, key, ca.File)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := agent.NewServer(token, e.Runner, slog.New(slog.NewTextHandler(io.Discard, nil)), e.Dir)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below
	hs.TLS = agentTLS.Peer()
	hs.StartTLS()
	defer hs.Close()

	transport := func(b *tlsconf.Bundle) http.RoundTripper {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = b.Client()
		return t
	}
	mcert, mkey := ca.Issue("manager")
	manager, err := tlsconf.Load(mcert, mkey, ca.File)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = agent.NewClientVia(hs.URL, token, transport(manager)).Status(ctx, "/")
	if err != nil && strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a manager with the group's certificate: %v", err)
	}
	if err == nil || !strings.Contains(err.Error(), "not a PostgreSQL data directory") {
		t.Fatalf("ping: %v", err)
	}
	// No client certificate: only the CA to check the agent with.
	pool, _ := tlsconf.LoadCA(ca.File)
	bare := http.DefaultTransport.(*http.Transport).Clone()
	bare.TLSClientConfig = manager.Client()
	bare.TLSClientConfig.Certificates = nil
	bare.TLSClientConfig.RootCAs = pool
	if _, err := agent.NewClientVia(hs.URL, token, bare).Status(ctx, "/"); err == nil || strings.Contains(err.Error(), "not a PostgreSQL data directory") {
		t.Fatalf("a client without a certificate reached the agent: %v", err)
	}
	// A certificate from another CA.
	other := tlstest.NewCA(t, "other")
	ocert, okey := other.Issue("intruder")
	intruder, err := tlsconf.Load(ocert, okey, ca.File) // trusts the agent, but its own certificate is foreign
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agent.NewClientVia(hs.URL, token, transport(intruder)).Status(ctx, "/"); err == nil || strings.Contains(err.Error(), "not a PostgreSQL data directory") {
		t.Fatalf("a client with a foreign certificate reached the agent: %v", err)
	}
}

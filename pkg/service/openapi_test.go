package service_test

import (
	"bytes"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/clustermgr/clustermgr/pkg/openapi"
	"github.com/clustermgr/clustermgr/pkg/service"
)

// routeKey is what the document and the router must agree on for a route.
type routeKey struct {
	Method, Path, Scope string
	PeerOK, Leader      bool
}

// walked lists the routes router serves, with what endpoints says of them
// (a route missing from endpoints has no scope).
func walked(t *testing.T, router chi.Routes, endpoints []service.Endpoint) []routeKey {
	t.Helper()
	byRoute := map[string]service.Endpoint{}
	for _, e := range endpoints {
		byRoute[e.Method+" "+e.Pattern] = e
	}
	var out []routeKey
	err := chi.Walk(router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.TrimSuffix(strings.ReplaceAll(route, "/*/", "/"), "/*")
		e := byRoute[method+" "+route]
		out = append(out, routeKey{Method: method, Path: route, Scope: e.Scope, PeerOK: e.PeerOK, Leader: e.Leader})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sortKeys(out)
	return out
}

func documented(routes []openapi.Route) []routeKey {
	var out []routeKey
	for _, r := range routes {
		out = append(out, routeKey{Method: r.Method, Path: r.Path, Scope: r.Scope, PeerOK: r.PeerOK, Leader: r.Leader})
	}
	sortKeys(out)
	return out
}

func sortKeys(k []routeKey) {
	sort.Slice(k, func(i, j int) bool { return k[i].Path+" "+k[i].Method < k[j].Path+" "+k[j].Method })
}

// TestOpenAPICoversEveryRoute walks the router: every route it serves is in
// the document with the scope it checks, and every documented route is
// served.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	s := service.New(nil, service.Options{Logger: quietLogger()})
	if diff := cmp.Diff(documented(openapi.Routes()), walked(t, s.Routes(), s.Endpoints())); diff != "" {
		t.Fatalf("the router and the API document differ (-document +router); describe the route in pkg/openapi/routes.go and run go test ./pkg/openapi -update:\n%s", diff)
	}
}

// TestOpenAPIDriftIsCaught shows the comparison above fails for a route
// added without documentation, and for one documented with another scope.
func TestOpenAPIDriftIsCaught(t *testing.T) {
	s := service.New(nil, service.Options{Logger: quietLogger()})
	r := chi.NewRouter()
	r.Mount("/", s.Routes().(http.Handler))
	r.Get("/v1/undocumented", func(http.ResponseWriter, *http.Request) {})
	got := walked(t, r, s.Endpoints())
	diff := cmp.Diff(documented(openapi.Routes()), got)
	if !strings.Contains(diff, "/v1/undocumented") {
		t.Fatalf("an undocumented route went unnoticed; diff:\n%s", diff)
	}

	routes := openapi.Routes()
	for i := range routes {
		if routes[i].Path == "/v1/tokens" && routes[i].Method == http.MethodGet {
			routes[i].Scope = "read"
		}
	}
	if cmp.Equal(documented(routes), walked(t, s.Routes(), s.Endpoints())) {
		t.Fatal("a route documented with the wrong scope went unnoticed")
	}
}

// TestOpenAPIServedByEveryReplica: leader and followers answer the
// document without a token.
func TestOpenAPIServedByEveryReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a group")
	}
	for _, rep := range startGroup(t, 3) {
		r := do(t, http.MethodGet, rep.URL+"/v1/openapi.json", nil, "Authorization", "")
		mustStatus(t, r, http.StatusOK)
		if !bytes.Equal(r.body, openapi.Document()) || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %s %.100s", rep.URL, r.header.Get("Content-Type"), r.body)
		}
	}
}

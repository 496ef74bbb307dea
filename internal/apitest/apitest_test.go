package apitest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/clustermgr/clustermgr/internal/apitest"
)

func exchange(t *testing.T, method, target, body string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, "http://127.0.0.1:1"+target, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

// TestCheck shows what the validator passes and what it refuses.
func TestCheck(t *testing.T) {
	v, err := apitest.New()
	if err != nil {
		t.Fatal(err)
	}
	jsonH := http.Header{"Content-Type": {"application/json"}}
	probH := http.Header{"Content-Type": {"application/problem+json"}}
	cases := []struct {
		name         string
		method, path string
		reqBody      string
		status       int
		header       http.Header
		body         string
		wantErr      string // "" for none
	}{
		{"a matching answer", "GET", "/v1/health", "", 200, jsonH, `{"status":"ok","node_id":"m1","state":"Leader"}`, ""},
		{"a required field missing", "GET", "/v1/health", "", 200, jsonH, `{"status":"ok","node_id":"m1"}`, "state"},
		{"a field the document lacks", "GET", "/v1/health", "", 200, jsonH, `{"status":"ok","node_id":"m1","state":"Leader","extra":1}`, "extra"},
		{"a status the route does not answer", "GET", "/v1/health", "", 201, jsonH, `{"status":"ok","node_id":"m1","state":"Leader"}`, "status"},
		{"a problem with its shape", "GET", "/v1/clusters/c1", "", 404, probH, `{"type":"about:blank","title":"Not Found","status":404,"detail":"no cluster c1"}`, ""},
		{"a problem without its title", "GET", "/v1/clusters/c1", "", 404, probH, `{"type":"about:blank","status":404}`, "title"},
		{"an invalid request refused", "POST", "/v1/tokens", `{"name":"x","scope":"root"}`, 400, probH, `{"type":"about:blank","title":"Bad Request","status":400}`, ""},
		{"an invalid request accepted", "POST", "/v1/tokens", `{"name":"x","scope":"root"}`, 201, jsonH,
			`{"name":"x","scope":"admin","created_at":"2026-12-02T00:00:00Z","created_by":"admin","secret":"s"}`, "accepted"},
		{"an unknown field accepted", "POST", "/v1/agents", `{"name":"a","url":"http://h:1","color":"red"}`, 201, jsonH,
			`{"name":"a","url":"http://h:1","created_at":"2026-12-02T00:00:00Z"}`, "accepted"},
		{"an undocumented route answered", "GET", "/v1/nowhere", "", 200, jsonH, `{}`, "not in the document"},
		{"an undocumented route refused", "GET", "/v1/nowhere", "", 404, probH, `{"type":"about:blank","title":"Not Found","status":404}`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := v.Check(exchange(t, c.method, c.path, c.reqBody), []byte(c.reqBody), c.status, c.header, []byte(c.body))
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("no error, want one about %q", c.wantErr)
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("error %v, want one about %q", err, c.wantErr)
			}
		})
	}
}

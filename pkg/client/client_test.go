package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
)

func TestNew_NormalisesAndRejectsServers(t *testing.T) {
	c, err := New([]string{"127.0.0.1:8001", " http://h:2/ ", ""})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Servers(), ","); got != "http://127.0.0.1:8001,http://h:2" {
		t.Fatalf("servers %s", got)
	}
	if _, err := New(nil); err == nil {
		t.Fatal("empty list accepted")
	}
	if _, err := New([]string{"ftp://x"}); err == nil || !strings.Contains(err.Error(), "ftp://x") {
		t.Fatalf("ftp accepted: %v", err)
	}
}

func TestClient_MovesToNextServerWhenOneIsDown(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	var got api.ClusterCreate
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/v1/clusters" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %s %s %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(201)
		_ = json.NewEncoder(w).Encode(api.Cluster{Name: got.Name, PGPasswordSet: true})
	}))
	defer up.Close()
	c, err := New([]string{down.URL, up.URL}, WithRetries(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := c.CreateCluster(context.Background(), api.ClusterCreate{Name: "orders", PGPassword: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if cl.Name != "orders" || !cl.PGPasswordSet || got.PGPassword != "pw" {
		t.Fatalf("answer %+v, sent %+v", cl, got)
	}
}

func TestClient_RetriesWhileNoLeaderThenSucceeds(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.Header().Set("Content-Type", api.ProblemContentType)
			w.WriteHeader(503)
			_ = json.NewEncoder(w).Encode(api.Problem{Status: 503, Title: "Service Unavailable", Detail: "no leader is known"})
			return
		}
		_ = json.NewEncoder(w).Encode(api.ClusterList{Clusters: []api.Cluster{{Name: "a"}}})
	}))
	defer srv.Close()
	c, _ := New([]string{srv.URL}, WithRetries(5, time.Millisecond))
	list, err := c.ListClusters(context.Background())
	if err != nil || len(list) != 1 || calls.Load() != 3 {
		t.Fatalf("list %v err %v calls %d", list, err, calls.Load())
	}
}

func TestClient_GivesUpAfterRetriesWithLastProblem(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
		_ = json.NewEncoder(w).Encode(api.Problem{Status: 503, Title: "Service Unavailable", Detail: "no leader is known"})
	}))
	defer srv.Close()
	c, _ := New([]string{srv.URL}, WithRetries(2, time.Millisecond))
	_, err := c.ListClusters(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Status != 503 || !strings.Contains(err.Error(), "no leader is known") {
		t.Fatalf("error %v", err)
	}
}

func TestClient_DecodesProblemsAndPlainErrors(t *testing.T) {
	cases := []struct {
		status int
		body   string
		want   string
	}{
		{400, `{"type":"x","title":"Bad Request","status":400,"detail":"70000 is out of range 1-65535","field":"nodes[0].port"}`, "400 Bad Request: nodes[0].port: 70000 is out of range 1-65535"},
		{400, `{"type":"x","title":"Bad Request","status":400,"detail":"name: is required","field":"name"}`, "400 Bad Request: name: is required"},
		{409, `{"type":"x","title":"Conflict","status":409,"detail":"cluster \"a\" already exists"}`, `409 Conflict: cluster "a" already exists`},
		{500, `<html>oops</html>`, "500 Internal Server Error: <html>oops</html>"},
		{404, ``, "404 Not Found"},
	}
	for _, tc := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			_, _ = io.WriteString(w, tc.body)
		}))
		c, _ := New([]string{srv.URL}, WithRetries(0, 0))
		_, err := c.GetCluster(context.Background(), "a")
		srv.Close()
		var e *Error
		if !errors.As(err, &e) || e.Status != tc.status || err.Error() != tc.want {
			t.Errorf("status %d: error %q, want %q", tc.status, err, tc.want)
		}
	}
}

func TestClient_PathsAndQueries(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.URL.RequestURI())
		if r.Method == "DELETE" {
			w.WriteHeader(204)
			return
		}
		_, _ = io.WriteString(w, "{}")
	}))
	defer srv.Close()
	c, _ := New([]string{srv.URL})
	ctx := context.Background()
	_ = c.DeleteCluster(ctx, "a", true)
	_ = c.RemoveNode(ctx, "a", "s1", "pg1", false)
	_, _ = c.Events(ctx, EventFilter{Cluster: "a", Since: "12", Limit: 5})
	_, _ = c.TransferLeadership(ctx, "m2")
	want := "DELETE /v1/clusters/a?force=true|DELETE /v1/clusters/a/shards/s1/nodes/pg1|GET /v1/events?cluster=a&limit=5&since=12|POST /v1/manager/transfer-leadership"
	if got := strings.Join(seen, "|"); got != want {
		t.Fatalf("requests\n%s\nwant\n%s", got, want)
	}
}

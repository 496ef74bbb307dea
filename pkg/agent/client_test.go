package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/clustermgr/clustermgr/pkg/fencing"
)

// TestClient_SendsTheLeaderTerm: every command carries the term of the
// leadership whose work sends it, so an agent can refuse a deposed leader.
func TestClient_SendsTheLeaderTerm(t *testing.T) {
	got := make(chan Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req Request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Error(err)
		}
		got <- req
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Result{})
	}))
	defer srv.Close()
	c := NewClient(srv.URL, "0123456789abcdef-token")
	if _, err := c.Promote(fencing.WithTerm(context.Background(), 12), "/data/pg1", 4); err != nil {
		t.Fatal(err)
	}
	if req := <-got; req.Term != 12 || req.Epoch != 4 {
		t.Fatalf("promote carried term %d epoch %d, want term 12 epoch 4", req.Term, req.Epoch)
	}
}

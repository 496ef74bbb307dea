package ha_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/ha"
	"github.com/clustermgr/clustermgr/pkg/webhook"
)

// receiver is a webhook endpoint that checks every signature, fails on
// purpose, and keeps the event ids it accepted.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	calls  int
	seen   map[uint64]api.Event
	dupes  int
	badSig int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.calls++
	if r.Header.Get(webhook.SignatureHeader) != webhook.Sign(rc.secret, body) {
		rc.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	// The first three attempts and every third one after fail.
	if rc.calls <= 3 || rc.calls%3 == 0 {
		http.Error(w, "failing on purpose", http.StatusInternalServerError)
		return
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil || strconv.FormatUint(p.ID, 10) != r.Header.Get(webhook.EventIDHeader) || p.Event.ID != p.ID {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	if _, ok := rc.seen[p.ID]; ok {
		rc.dupes++
	}
	rc.seen[p.ID] = p.Event
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) has(ids []uint64) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, id := range ids {
		if _, ok := rc.seen[id]; !ok {
			return false
		}
	}
	return true
}

// TestWebhook_FailoverEventsDeliveredSignedAfterRetries: a subscription to
// promotions and operations sees every event of a failover, by id,
// signed, though its receiver fails on purpose; its secret never shows;
// after the leader dies the next one carries on.
func TestWebhook_FailoverEventsDeliveredSignedAfterRetries(t *testing.T) {
	if testing.Short() {
		t.Skip("real PostgreSQL")
	}
	e := newEnv(t, ha.Config{})
	const secret = "webhook-secret-0123456789"
	rc := &receiver{t: t, secret: secret, seen: map[uint64]api.Event{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)

	if status, out := e.do("POST", "/v1/webhooks", map[string]any{"name": "pager", "url": srv.URL, "secret": "short"}, nil); status != http.StatusBadRequest || !strings.Contains(string(out), "secret") {
		t.Fatalf("a short secret: %d %s", status, out)
	}
	var wh api.Webhook
	e.mustDo("POST", "/v1/webhooks", map[string]any{"name": "pager", "url": srv.URL, "kinds": []string{"promotion", "operation"}, "cluster": "app", "secret": secret}, http.StatusCreated, &wh)
	status, out := e.do("GET", "/v1/webhooks", nil, nil)
	if status != http.StatusOK || strings.Contains(string(out), secret) || !strings.Contains(string(out), srv.URL) {
		t.Fatalf("GET /v1/webhooks: %d %s", status, out)
	}
	from := wh.Delivered

	wanted := func() []uint64 {
		var ev api.EventList
		e.do("GET", "/v1/events?cluster=app&limit=1000", nil, &ev)
		var ids []uint64
		for _, x := range ev.Events {
			if x.ID > from && (x.Kind == "promotion" || x.Kind == "operation") {
				ids = append(ids, x.ID)
			}
		}
		return ids
	}
	e.nodes["pg1"].Crash()
	e.waitPrimaryNot("pg1", 30*time.Second)
	e.waitFor(60*time.Second, "the failover's operation ended", func() bool { return len(e.events("failover")) > 0 && e.shard().Operation == "" })
	ids := wanted()
	if len(ids) < 3 {
		t.Fatalf("only %d promotion and operation events: %v", len(ids), ids)
	}
	e.waitFor(60*time.Second, "every failover event delivered", func() bool { return rc.has(ids) })

	// The leader dies; the next one delivers what comes next.
	_ = e.leader().Kill()
	e.waitShardState("healthy", 90*time.Second)
	ref := e.switchover("")
	e.waitOperation(ref.ID, 60*time.Second)
	ids = wanted()
	e.waitFor(60*time.Second, "the switchover's events delivered by the new leader", func() bool { return rc.has(ids) })

	rc.mu.Lock()
	defer rc.mu.Unlock()
	for id, ev := range rc.seen {
		if ev.Cluster != "app" || (ev.Kind != "promotion" && ev.Kind != "operation") || id <= from {
			t.Errorf("delivered an event the subscription does not take: %+v", ev)
		}
	}
	if rc.badSig > 0 {
		t.Errorf("%d deliveries with a bad signature", rc.badSig)
	}
	var dl api.DeliveryList
	e.mustDo("GET", "/v1/webhooks/pager/deliveries", nil, http.StatusOK, &dl)
	if len(dl.Deliveries) == 0 {
		t.Fatal("no deliveries listed")
	}
	t.Logf("%d events delivered in %d attempts (%d delivered twice); %d attempts listed by the leader", len(rc.seen), rc.calls, rc.dupes, len(dl.Deliveries))
	for _, ev := range e.events("") {
		if strings.Contains(ev.Message, secret) {
			t.Fatalf("the secret is in an event: %+v", ev)
		}
	}
}

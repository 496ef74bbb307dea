package webhook

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clustermgr/clustermgr/pkg/meta"
)

// memStore is a state in memory: the dispatcher reads it and records its
// position in it.
type memStore struct {
	mu sync.Mutex
	st *meta.State
}

func (m *memStore) View(_ context.Context, _ meta.Consistency, fn func(*meta.State) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fn(m.st)
}

func (m *memStore) Apply(_ context.Context, cmd meta.Command) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := cmd.(*meta.WebhookDelivered); ok {
		w := *m.st.Webhooks[c.Name]
		w.Delivered = max(w.Delivered, c.EventID)
		m.st.Webhooks[c.Name] = &w
	}
	return nil
}

func (m *memStore) delivered(name string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.Webhooks[name].Delivered
}

// TestDispatcher_InOrderRetriedSignedFiltered: the events a subscription
// takes reach the receiver in order, signed, each after the receiver's
// failures; the others are passed over; the position ends at the last
// event; an event that fell off the history before delivery is reported.
func TestDispatcher_InOrderRetriedSignedFiltered(t *testing.T) {
	const secret = "0123456789abcdef-secret"
	var mu sync.Mutex
	var got []uint64
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if r.Header.Get(SignatureHeader) != Sign(secret, body) {
			t.Errorf("bad signature on %s", body)
		}
		if calls == 1 || calls == 3 { // fails on purpose
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		var p Payload
		if err := json.Unmarshal(body, &p); err != nil || p.Webhook != "pager" {
			t.Errorf("payload %s: %v", body, err)
		}
		got = append(got, p.ID)
	}))
	defer srv.Close()

	st := meta.NewState()
	st.Events = []meta.Event{
		{ID: 5, Kind: "promotion", Cluster: "app"},
		{ID: 6, Kind: "decision", Cluster: "app"},
		{ID: 7, Kind: "operation", Cluster: "app"},
		{ID: 8, Kind: "promotion", Cluster: "other"},
		{ID: 9, Kind: "promotion", Cluster: "app"},
	}
	st.NextEventID = 10
	st.Webhooks["pager"] = &meta.Webhook{Name: "pager", URL: srv.URL, Kinds: []string{"promotion", "operation"}, Cluster: "app", Secret: "sealed", Delivered: 3}
	store := &memStore{st: st}
	d := &Dispatcher{Store: store, Client: srv.Client(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Open: func(purpose, sealed string) (string, error) {
			if purpose != meta.WebhookSecretPurpose("pager") || sealed != "sealed" {
				t.Errorf("opened %s %s", purpose, sealed)
			}
			return secret, nil
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for store.delivered("pager") < 9 {
		if time.Now().After(deadline) {
			t.Fatalf("position %d after 30 s", store.delivered("pager"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]uint64{5, 7, 9}, got); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
	ds := d.Deliveries("pager")
	var failed, dropped int
	for _, x := range ds {
		if x.Status == http.StatusBadGateway {
			failed++
		}
		if x.EventID == 0 && x.Error != "" {
			dropped++
		}
	}
	if failed != 2 || dropped != 1 || ds[0].EventID != 9 || ds[0].Error != "" {
		t.Errorf("deliveries %+v: %d failed, %d dropped reports", ds, failed, dropped)
	}
}

func TestDroppedEvents(t *testing.T) {
	evs := func(ids ...uint64) []meta.Event {
		var out []meta.Event
		for _, id := range ids {
			out = append(out, meta.Event{ID: id})
		}
		return out
	}
	const tail = " fell off the history (10000 kept, shared among the shards) before they were delivered"
	for _, tc := range []struct {
		name      string
		delivered uint64
		events    []meta.Event
		want      string
	}{
		{"none missing", 3, evs(4, 5, 6), ""},
		{"nothing pending", 3, nil, ""},
		{"the oldest fell off", 3, evs(7, 8), "events 4-6" + tail},
		{"a busy shard's in between", 3, evs(4, 9, 10, 12), "events 5-8, 11-11" + tail},
		{"many ranges", 0, evs(2, 4, 6, 8, 10, 12, 14), "events 1-1, 3-3, 5-5, 7-7, 9-9, and 2 more ranges" + tail},
	} {
		if got := droppedEvents(tc.delivered, tc.events); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

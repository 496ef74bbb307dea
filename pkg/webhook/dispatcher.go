package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// Store is what the dispatcher needs of the replicated store.
type Store interface {
	Apply(ctx context.Context, cmd meta.Command) error
	View(ctx context.Context, c meta.Consistency, fn func(*meta.State) error) error
}

// Headers of a delivery.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the
	// body under the subscription's secret.
	SignatureHeader = "X-Clustermgr-Signature-256"
	// EventIDHeader is the event's id: stable across retries and leaders.
	EventIDHeader = "X-Clustermgr-Event-Id"
	// EventKindHeader is the event's kind.
	EventKindHeader = "X-Clustermgr-Event-Kind"
)

// Payload is the body of a delivery.
type Payload struct {
	// ID is the event's id (also in EventIDHeader): a receiver that sees
	// an id twice has seen the same event twice.
	ID      uint64    `json:"id"`
	Webhook string    `json:"webhook"`
	Event   api.Event `json:"event"`
	// SentAt is when this attempt was sent (the signature covers it).
	SentAt time.Time `json:"sent_at"`
}

// Sign returns the signature header value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Retry pauses: the first after a failure, doubling up to the last.
const (
	firstRetry = time.Second
	maxRetry   = time.Minute
	// pollEvery is how often an idle subscription looks for new events.
	pollEvery = 200 * time.Millisecond
	// sendTimeout bounds one attempt.
	sendTimeout = 5 * time.Second
	// keepDeliveries is how many attempts per subscription the log keeps.
	keepDeliveries = 50
)

// Dispatcher delivers events to every subscription while its Run lasts
// (the leader's term).
type Dispatcher struct {
	Store Store
	// Open opens a sealed secret bound to purpose (keyring.Open).
	Open   func(purpose, sealed string) (string, error)
	Client *http.Client
	Now    func() time.Time
	Log    *slog.Logger

	mu  sync.Mutex
	log map[string][]api.Delivery // by subscription, oldest first
}

// Deliveries returns the last attempts of a subscription on this
// replica, newest first.
func (d *Dispatcher) Deliveries(name string) []api.Delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	src := d.log[name]
	out := make([]api.Delivery, 0, len(src))
	for i := len(src) - 1; i >= 0; i-- {
		out = append(out, src[i])
	}
	return out
}

func (d *Dispatcher) record(name string, dl api.Delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.log == nil {
		d.log = map[string][]api.Delivery{}
	}
	l := append(d.log[name], dl)
	if len(l) > keepDeliveries {
		l = l[len(l)-keepDeliveries:]
	}
	d.log[name] = l
}

func (d *Dispatcher) forget(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.log, name)
}

func (d *Dispatcher) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Run keeps one worker per subscription until ctx ends, and waits for
// them.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	workers := map[string]context.CancelFunc{} // by name and version
	defer func() {
		for _, cancel := range workers {
			cancel()
		}
	}()
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		want := map[string]string{} // key → name
		_ = d.Store.View(ctx, meta.Stale, func(st *meta.State) error {
			for name, w := range st.Webhooks {
				want[name+"\x00"+w.URL+"\x00"+w.Secret+"\x00"+w.Cluster+"\x00"+fmt.Sprint(w.Kinds)] = name
			}
			return nil
		})
		names := map[string]bool{}
		for _, name := range want {
			names[name] = true
		}
		for key, cancel := range workers {
			if _, ok := want[key]; !ok {
				cancel()
				delete(workers, key)
				if name, _, _ := strings.Cut(key, "\x00"); !names[name] {
					d.forget(name) // removed: a new one of that name starts afresh
				}
			}
		}
		for key, name := range want {
			if _, ok := workers[key]; ok {
				continue
			}
			wctx, cancel := context.WithCancel(ctx)
			workers[key] = cancel
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.work(wctx, name)
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// work delivers one subscription's events in order until ctx ends (the
// term, or the subscription changed or went away).
func (d *Dispatcher) work(ctx context.Context, name string) {
	pause := time.Duration(0)
	for ctx.Err() == nil {
		w, events, dropped, ok := d.pending(ctx, name)
		if !ok {
			return
		}
		if dropped != "" {
			d.record(name, api.Delivery{At: d.now(), Error: dropped})
			d.Log.Warn("webhook fell behind the event history", "webhook", name, "detail", dropped)
		}
		secret, err := d.Open(meta.WebhookSecretPurpose(name), w.Secret)
		if err != nil {
			d.record(name, api.Delivery{At: d.now(), Error: "its secret cannot be opened on this replica: " + err.Error()})
			sleep(ctx, maxRetry)
			continue
		}
		mark, marked := w.Delivered, w.Delivered
		record := func() {
			if mark > marked {
				d.mark(ctx, name, mark)
				marked = mark
			}
		}
		for _, e := range events {
			if !w.Matches(e) {
				mark = e.ID
				continue
			}
			for ctx.Err() == nil {
				if err := d.send(ctx, w, secret, e); err == nil {
					pause = 0
					break
				}
				pause = min(max(2*pause, firstRetry), maxRetry)
				// What was delivered so far is recorded before the pause.
				record()
				sleep(ctx, pause)
			}
			if ctx.Err() != nil {
				return
			}
			mark = e.ID
			record()
		}
		record()
		sleep(ctx, pollEvery)
	}
}

// pending returns the subscription and the events after its mark, and
// says when some of those fell off the bounded history first.
func (d *Dispatcher) pending(ctx context.Context, name string) (meta.Webhook, []meta.Event, string, bool) {
	var w meta.Webhook
	var events []meta.Event
	var dropped string
	found := false
	_ = d.Store.View(ctx, meta.Stale, func(st *meta.State) error {
		cur, ok := st.Webhooks[name]
		if !ok {
			return nil
		}
		w, found = *cur, true
		for _, e := range st.Events {
			if e.ID > w.Delivered {
				events = append(events, e)
			}
		}
		dropped = droppedEvents(w.Delivered, events)
		return nil
	})
	return w, events, dropped, found
}

// droppedEvents says which events after delivered are missing from
// events (the history's events after it, oldest first): those that fell
// off the bounded history, the oldest, or, as it is kept per shard, the
// busiest shards' in between. "" when none is.
func droppedEvents(delivered uint64, events []meta.Event) string {
	var gaps []string
	next := delivered + 1
	for _, e := range events {
		if e.ID > next {
			gaps = append(gaps, fmt.Sprintf("%d-%d", next, e.ID-1))
		}
		next = e.ID + 1
	}
	if len(gaps) == 0 {
		return ""
	}
	if len(gaps) > 5 {
		gaps = append(gaps[:5], fmt.Sprintf("and %d more ranges", len(gaps)-5))
	}
	return fmt.Sprintf("events %s fell off the history (%d kept, shared among the shards) before they were delivered", strings.Join(gaps, ", "), meta.MaxEvents)
}

func (d *Dispatcher) mark(ctx context.Context, name string, id uint64) {
	if err := d.Store.Apply(ctx, &meta.WebhookDelivered{Name: name, EventID: id}); err != nil && ctx.Err() == nil {
		d.Log.Debug("record a webhook's deliveries", "webhook", name, "err", err)
	}
}

// send posts one event once and records the attempt.
func (d *Dispatcher) send(ctx context.Context, w meta.Webhook, secret string, e meta.Event) error {
	start := d.now()
	body, err := json.Marshal(Payload{ID: e.ID, Webhook: w.Name, Event: api.Event(e), SentAt: start.UTC()})
	if err != nil {
		return err
	}
	dl := api.Delivery{At: start, EventID: e.ID, Kind: e.Kind}
	err = d.post(ctx, w.URL, secret, e, body, &dl)
	dl.Millis = d.now().Sub(start).Milliseconds()
	if err != nil {
		dl.Error = err.Error()
	}
	d.record(w.Name, dl)
	return err
}

func (d *Dispatcher) post(ctx context.Context, url, secret string, e meta.Event, body []byte, dl *api.Delivery) error {
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "clustermgr-webhook")
	req.Header.Set(SignatureHeader, Sign(secret, body))
	req.Header.Set(EventIDHeader, strconv.FormatUint(e.ID, 10))
	req.Header.Set(EventKindHeader, e.Kind)
	resp, err := d.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	dl.Status = resp.StatusCode
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

package meta

import (
	"fmt"
	"net/url"
	"slices"
	"time"
)

// Webhook subscriptions: the leader posts every event of the kinds a
// subscription names (of one cluster, when it names one) to its URL,
// signed with its secret (sealed in the state like the clusters'
// passwords), in order, at least once: Delivered is how far it got, so a
// new leader carries on from there.

// EventWebhook: a subscription was created, changed or removed.
const EventWebhook = "webhook"

// MaxWebhooks bounds the subscriptions.
const MaxWebhooks = 50

// Webhook is a subscription.
type Webhook struct {
	Name    string   `json:"name"`
	URL     string   `json:"url"`
	Kinds   []string `json:"kinds,omitempty"`   // every kind when empty
	Cluster string   `json:"cluster,omitempty"` // every cluster when empty
	// Secret signs the deliveries (HMAC-SHA256); sealed.
	Secret string `json:"secret"`
	// Delivered is the id of the last event delivered (or skipped as not
	// matching): the next delivery starts after it.
	Delivered uint64    `json:"delivered"`
	CreatedAt time.Time `json:"created_at"`
}

// Matches reports whether the subscription takes e.
func (w *Webhook) Matches(e Event) bool {
	return (len(w.Kinds) == 0 || slices.Contains(w.Kinds, e.Kind)) && (w.Cluster == "" || w.Cluster == e.Cluster)
}

// WebhookSecretPurpose is what a sealed webhook secret is bound to.
func WebhookSecretPurpose(name string) string { return "webhook/" + name + "/secret" }

// PutWebhook creates a subscription, or replaces one (keeping how far it
// got).
type PutWebhook struct {
	Stamp
	Webhook Webhook `json:"webhook"`
}

// Type implements Command.
func (*PutWebhook) Type() CommandType { return CmdPutWebhook }

// DeleteWebhook removes a subscription.
type DeleteWebhook struct {
	Stamp
	Name string `json:"name"`
}

// Type implements Command.
func (*DeleteWebhook) Type() CommandType { return CmdDeleteWebhook }

// WebhookDelivered records how far a subscription's deliveries got.
type WebhookDelivered struct {
	Stamp
	Name    string `json:"name"`
	EventID uint64 `json:"event_id"`
}

// Type implements Command.
func (*WebhookDelivered) Type() CommandType { return CmdWebhookDelivered }

// ValidateWebhookURL checks a subscription's URL: http(s) and a host.
func ValidateWebhookURL(field, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" || len(v) > 2000 {
		return invalid(field, "%q is not an http(s) URL without credentials", Truncate(v, 200))
	}
	return nil
}

func applyPutWebhook(s *State, c *PutWebhook, p pass) error {
	w := c.Webhook
	if err := ValidateName("name", w.Name); err != nil {
		return err
	}
	if err := ValidateWebhookURL("url", w.URL); err != nil {
		return err
	}
	if len(w.Kinds) > 50 {
		return invalid("kinds", "at most 50")
	}
	for i, k := range w.Kinds {
		if k == "" || len(k) > 63 {
			return invalid(fmt.Sprintf("kinds[%d]", i), "%q is not an event kind", Truncate(k, 100))
		}
	}
	if w.Cluster != "" {
		if _, ok := s.Clusters[w.Cluster]; !ok {
			return notFound("cluster %q does not exist", w.Cluster)
		}
	}
	if w.Secret == "" {
		return invalid("secret", "is required")
	}
	if err := checkSealed(p, "secret", w.Secret); err != nil {
		return err
	}
	if len(w.Secret) > MaxSealedLen {
		return invalid("secret", "is longer than %d characters", MaxSealedLen)
	}
	old, exists := s.Webhooks[w.Name]
	if !exists && len(s.Webhooks) >= MaxWebhooks {
		return conflict("%d webhooks exist already", len(s.Webhooks))
	}
	if p.check {
		return nil
	}
	w.Kinds = slices.Clone(w.Kinds)
	w.CreatedAt, w.Delivered = c.At, s.NextEventID-1 // from now on
	msg := fmt.Sprintf("webhook %s created for %s", w.Name, Truncate(w.URL, 200))
	if exists {
		w.CreatedAt, w.Delivered = old.CreatedAt, old.Delivered
		msg = fmt.Sprintf("webhook %s changed: %s", w.Name, Truncate(w.URL, 200))
	}
	if s.Webhooks == nil {
		s.Webhooks = map[string]*Webhook{}
	}
	s.Webhooks[w.Name] = &w
	s.addEvent(Event{At: c.At, Kind: EventWebhook, Message: msg})
	return nil
}

func applyDeleteWebhook(s *State, c *DeleteWebhook, p pass) error {
	if _, ok := s.Webhooks[c.Name]; !ok {
		return notFound("webhook %q does not exist", c.Name)
	}
	if p.check {
		return nil
	}
	delete(s.Webhooks, c.Name)
	s.addEvent(Event{At: c.At, Kind: EventWebhook, Message: "webhook " + c.Name + " removed"})
	return nil
}

// applyWebhookDelivered moves a subscription's mark forward (never back);
// it records no event, or every delivery would make another.
func applyWebhookDelivered(s *State, c *WebhookDelivered, p pass) error {
	w, ok := s.Webhooks[c.Name]
	if !ok {
		return notFound("webhook %q does not exist", c.Name)
	}
	if c.EventID >= s.NextEventID {
		return invalid("event_id", "%d is not an event yet", c.EventID)
	}
	if c.EventID <= w.Delivered || p.check {
		return nil
	}
	next := *w
	next.Delivered = c.EventID
	s.Webhooks[c.Name] = &next
	return nil
}

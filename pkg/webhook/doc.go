// Package webhook owns the delivery of events to webhook subscriptions:
// the leader's Dispatcher posts each event a subscription takes, in order,
// as JSON signed with HMAC-SHA256 of the subscription's secret, retries a
// failed delivery with a growing pause, and records in Raft how far each
// subscription got, so that a new leader carries on (at least once: an
// event delivered just before a change of leader may come again, with the
// same id). It runs beside the HA pipeline and never holds it up: the
// pipeline only writes events.
package webhook

// Package api holds the wire types of the REST API v1: request bodies,
// responses and the problem+json error document. The service serves them and
// the client (and so the CLI) decodes them; neither owns them.
package api

package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/clustermgr/clustermgr/pkg/api"
)

// Comments are the doc comments of the wire types, by type name and by
// "Type.Field"; they become the schemas' descriptions.
type Comments map[string]string

// ScopeExtension names the scope a route needs in the document.
const ScopeExtension = "x-clustermgr-scope"

const description = `The REST API of a clustermgr manager group.

Every replica serves every route. Reads and changes are served by the Raft
leader: a follower forwards them (a GET with consistency=stale is answered
from the follower's own state). /v1/health, /v1/manager, /metrics and this
document are answered by the replica asked.

Authentication: a bearer token (Authorization: Bearer <token>). A token has
one scope: read (every GET), operate (switchover, failover, rejoin, reinit,
backups, pause and resume, cancelling operations, leadership transfer) or
admin (everything, tokens and the audit trail included); a larger scope
covers the smaller ones. The scope each route needs is in its
x-clustermgr-scope. 401: no valid token; 403: the token's scope is too
small.

Errors are RFC 9457 problem documents (application/problem+json) with the
HTTP status; a 400 names the offending input in field. A request body is
JSON (Content-Type: application/json), holds no unknown field, no string
longer than 4096 bytes and no list or map of more than 1000 entries.
Changes that start work answer 202 with the operation to follow
(GET /v1/operations/{id}).`

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// Build returns the API document of routes, indented JSON.
func Build(routes []Route, c Comments) ([]byte, error) {
	s := &schemas{comments: c, both: usedBothWays(routes), defined: map[string]object{}}
	paths := object{}
	tags := map[string]bool{}
	for _, r := range routes {
		item, _ := paths[r.Path].(object)
		if item == nil {
			item = object{}
			paths[r.Path] = item
		}
		m := strings.ToLower(r.Method)
		if _, dup := item[m]; dup {
			return nil, fmt.Errorf("openapi: %s %s is described twice", r.Method, r.Path)
		}
		item[m] = s.operation(r)
		tags[r.Tag] = true
	}
	problem := s.ref(reflect.TypeFor[api.Problem](), response)
	var tagList []any
	for _, t := range slices.Sorted(maps.Keys(tags)) {
		tagList = append(tagList, object{"name": t})
	}
	doc := object{
		"openapi": "3.0.3",
		"info": object{
			"title":       "clustermgr",
			"version":     "1",
			"description": description,
		},
		"tags":     tagList,
		"security": []any{object{"bearer": []any{}}},
		"paths":    paths,
		"components": object{
			"securitySchemes": object{
				"bearer": object{"type": "http", "scheme": "bearer",
					"description": "An API token (clustermgr tokens create), or for the replicas' own endpoints the group's peer credential."},
			},
			"responses": object{
				"Problem": object{
					"description": "An error: RFC 9457 problem document.",
					"content":     object{api.ProblemContentType: object{"schema": problem}},
				},
			},
			"schemas": s.defined,
		},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("openapi: encode: %w", err)
	}
	return buf.Bytes(), nil
}

func (s *schemas) operation(r Route) object {
	op := object{
		"operationId":  r.ID,
		"summary":      r.Summary,
		"tags":         []any{r.Tag},
		ScopeExtension: r.Scope,
	}
	var desc []string
	switch r.Scope {
	case "open":
		op["security"] = []any{}
		desc = append(desc, "Needs no token.")
	case "peer":
		desc = append(desc, "Needs the group's peer credential.")
	default:
		desc = append(desc, "Needs a token of scope "+r.Scope+".")
	}
	if r.PeerOK {
		desc = append(desc, "The group's peer credential is accepted too.")
	}
	if r.Leader {
		desc = append(desc, "Served by the leader; a follower forwards it.")
	}
	op["description"] = strings.Join(desc, " ")

	var params []any
	for _, m := range pathParam.FindAllStringSubmatch(r.Path, -1) {
		params = append(params, object{"name": m[1], "in": "path", "required": true, "schema": object{"type": "string"}})
	}
	for _, q := range r.Query {
		sch := object{"type": q.Type}
		if len(q.Enum) > 0 {
			e := make([]any, len(q.Enum))
			for i, v := range q.Enum {
				e[i] = v
			}
			sch["enum"] = e
		}
		if q.Max > 0 {
			sch["minimum"], sch["maximum"] = q.Min, q.Max
		}
		if q.Type == "integer" && q.Max == 0 {
			sch["minimum"] = 0
		}
		params = append(params, object{"name": q.Name, "in": "query", "description": q.Description, "schema": sch})
	}
	if len(params) > 0 {
		op["parameters"] = params
	}

	switch {
	case r.Request != nil:
		op["requestBody"] = object{
			"required": !r.BodyOptional,
			"content":  object{"application/json": object{"schema": s.ref(r.Request, request)}},
		}
	case r.BodyOptional:
		op["requestBody"] = object{
			"required":    false,
			"description": "Empty, or an empty JSON object; send Content-Type: application/json.",
			"content":     object{"application/json": object{"schema": object{"type": "object", "additionalProperties": false}}},
		}
	}

	responses := object{"default": object{"$ref": "#/components/responses/Problem"}}
	for code, t := range r.Responses {
		responses[strconv.Itoa(code)] = s.response(r, code, t)
	}
	op["responses"] = responses
	return op
}

func (s *schemas) response(r Route, code int, t reflect.Type) object {
	out := object{"description": http.StatusText(code)}
	switch {
	case code == http.StatusNoContent:
		return out
	case r.Media != "":
		content := object{}
		for _, m := range strings.Split(r.Media, ",") {
			content[m] = object{"schema": object{"type": "string"}}
		}
		out["content"] = content
	case t == nil:
		out["content"] = object{"application/json": object{"schema": object{"type": "object"}}}
	default:
		out["content"] = object{"application/json": object{"schema": s.ref(t, response)}}
	}
	if code == http.StatusAccepted && t == reflect.TypeFor[api.OperationRef]() {
		out["headers"] = object{"Location": object{"description": "The operation's URL.", "schema": object{"type": "string"}}}
	}
	return out
}

// usedBothWays returns the struct types that appear in a request and in a
// response.
func usedBothWays(routes []Route) map[reflect.Type]bool {
	in, out := map[reflect.Type]bool{}, map[reflect.Type]bool{}
	for _, r := range routes {
		if r.Request != nil {
			collect(r.Request, in)
		}
		for _, t := range r.Responses {
			if t != nil {
				collect(t, out)
			}
		}
	}
	both := map[reflect.Type]bool{}
	for t := range in {
		if out[t] {
			both[t] = true
		}
	}
	return both
}

// collect adds the named struct types reachable from t to seen.
func collect(t reflect.Type, seen map[reflect.Type]bool) {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map:
		collect(t.Elem(), seen)
	case reflect.Struct:
		if seen[t] || t.PkgPath() == "time" {
			return
		}
		seen[t] = true
		for f := range t.Fields() {
			if f.IsExported() {
				collect(f.Type, seen)
			}
		}
	}
}

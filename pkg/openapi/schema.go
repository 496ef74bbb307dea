package openapi

import (
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"
	"time"
)

// object is a JSON object of the document, kept in key order by
// encoding/json's sorting of map keys.
type object = map[string]any

// direction says whether a schema describes what clients send or what the
// API answers: a request's fields are optional unless listed in
// inputRequired, and a response's are present unless omitempty.
type direction int

const (
	response direction = iota
	request
)

// Limits the API enforces on every decoded request (pkg/service/bounds.go).
const (
	maxStringBytes = 4096
	maxListLen     = 1000
)

// inputRequired lists the fields a request must hold, by Go type name.
func inputRequired(typ string) []string {
	switch typ {
	case "JoinRequest":
		return []string{"id", "raft_addr", "api_addr"}
	case "ClusterCreate":
		return []string{"name"}
	case "Node", "NodeAdd":
		return []string{"name", "host", "port"}
	case "ShardCreate":
		return []string{"name", "nodes"}
	case "RestoreRequest":
		return []string{"backup", "node"}
	case "TokenRequest":
		return []string{"name", "scope"}
	case "Agent":
		return []string{"name", "url"}
	case "PeerView":
		return []string{"replica"}
	}
	return nil
}

// outputOnly reports the fields a request does not carry (the server sets
// them), by Go type name and JSON name.
func outputOnly(field string) bool {
	switch field {
	case "Node.status", "Node.added_at", "Node.params_applied", "Node.maintenance", "Node.maintenance_reason", "Agent.created_at":
		return true
	}
	return false
}

// enum returns the values a field takes, by Go type name and JSON name; in
// a request "" is also accepted where a Go client sends the zero value.
func enum(field string) []string {
	switch field {
	case "TokenRequest.scope", "Token.scope", "NewToken.scope":
		return []string{"read", "operate", "admin"}
	case "ShardPatch.synchronous", "ShardSettings.synchronous":
		return []string{"off", "on", "strict"}
	case "Node.role":
		return []string{"primary", "standby"}
	case "Health.status":
		return []string{"ok"}
	}
	return nil
}

// schemas reflects Go types into the document's components.
type schemas struct {
	comments Comments
	// both are the types used in requests and responses alike: their
	// request schema is named with an Input suffix.
	both    map[reflect.Type]bool
	defined map[string]object
}

func (s *schemas) name(t reflect.Type, dir direction) string {
	if dir == request && s.both[t] {
		return t.Name() + "Input"
	}
	return t.Name()
}

// ref returns the schema of t, defining the components it needs.
func (s *schemas) ref(t reflect.Type, dir direction) object {
	switch {
	case t == reflect.TypeFor[time.Time]():
		return object{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.Pointer:
		return s.ref(t.Elem(), dir)
	}
	switch t.Kind() {
	case reflect.String:
		o := object{"type": "string"}
		if dir == request {
			o["maxLength"] = maxStringBytes
		}
		return o
	case reflect.Bool:
		return object{"type": "boolean"}
	case reflect.Int, reflect.Int64:
		return object{"type": "integer", "format": "int64"}
	case reflect.Int32:
		return object{"type": "integer", "format": "int32"}
	case reflect.Uint32:
		return object{"type": "integer", "format": "int64", "minimum": 0, "maximum": uint64(1<<32 - 1)}
	case reflect.Uint64:
		return object{"type": "integer", "minimum": 0}
	case reflect.Float64:
		return object{"type": "number", "format": "double"}
	case reflect.Slice:
		o := object{"type": "array", "items": s.ref(t.Elem(), dir)}
		if dir == request {
			o["maxItems"] = maxListLen
		}
		return o
	case reflect.Map:
		elem := s.ref(t.Elem(), dir)
		if t.Elem().Kind() == reflect.Pointer {
			// A null value means something (a parameter reset).
			elem = maps.Clone(elem)
			elem["nullable"] = true
		}
		o := object{"type": "object", "additionalProperties": elem}
		if dir == request {
			o["maxProperties"] = maxListLen
		}
		return o
	case reflect.Struct:
		name := s.name(t, dir)
		if _, ok := s.defined[name]; !ok {
			s.defined[name] = nil // a cycle stops here
			s.defined[name] = s.object(t, dir)
		}
		return object{"$ref": "#/components/schemas/" + name}
	}
	panic(fmt.Sprintf("openapi: no schema for %v", t))
}

// object is the schema of struct type t.
func (s *schemas) object(t reflect.Type, dir direction) object {
	props := object{}
	var required []string
	s.fields(t, t.Name(), dir, props, &required)
	if dir == request {
		required = inputRequired(t.Name())
	}
	o := object{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		sort.Strings(required)
		o["required"] = required
	}
	if c := s.comments[t.Name()]; c != "" {
		o["description"] = c
	}
	return o
}

// fields adds the JSON fields of struct type t (embedded structs inlined)
// to props; owner is the type whose schema is built.
func (s *schemas) fields(t reflect.Type, owner string, dir direction, props object, required *[]string) {
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			s.fields(f.Type, owner, dir, props, required)
			continue
		}
		if name == "" {
			name = f.Name
		}
		if dir == request && (outputOnly(t.Name()+"."+name) || outputOnly(owner+"."+name)) {
			continue
		}
		p := s.ref(f.Type, dir)
		if c := s.comments[t.Name()+"."+f.Name]; c != "" {
			if _, isRef := p["$ref"]; isRef {
				// A sibling of $ref is ignored in OpenAPI 3.0: wrap it.
				p = object{"allOf": []any{p}}
			}
			p["description"] = c
		}
		if vals := enum(t.Name() + "." + name); vals != nil {
			e := make([]any, 0, len(vals)+1)
			for _, v := range vals {
				e = append(e, v)
			}
			if dir == request {
				e = append(e, "")
			}
			p["enum"] = e
		}
		props[name] = p
		omit := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
		if !omit {
			*required = append(*required, name)
		}
	}
}

package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/clustermgr/clustermgr/pkg/meta"
)

// decodeBody decodes a JSON request body into v strictly: unknown fields,
// wrong types, trailing data, bodies over the limit and strings or lists
// over their bounds (bounds.walk) are errors that name what is wrong. An empty body is an error unless allowEmpty.
func decodeBody(r *http.Request, v any, allowEmpty bool) error {
	return decodeBounded(r, v, allowEmpty, bounds{list: maxListLen})
}

// decodeBounded is decodeBody with lists bounded by b.
func decodeBounded(r *http.Request, v any, allowEmpty bool, b bounds) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		return &unsupportedMediaType{contentType: ct}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		if allowEmpty {
			return nil
		}
		return &meta.Error{Kind: meta.KindInvalid, Msg: "request body is empty; a JSON object is required"}
	}
	if err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return &meta.Error{Kind: meta.KindInvalid, Msg: "request body has data after the JSON object"}
	}
	return b.walk(reflect.ValueOf(v), "")
}

// jsonError turns a decoding error into a typed error naming the field.
func jsonError(err error) error {
	var (
		mbe *http.MaxBytesError
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.As(err, &syn):
		return &meta.Error{Kind: meta.KindInvalid, Msg: fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, syn)}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return &meta.Error{Kind: meta.KindInvalid, Field: field, Msg: fmt.Sprintf("must be %s, not JSON %s", jsonKind(typ.Type.Kind().String()), typ.Value)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &meta.Error{Kind: meta.KindInvalid, Msg: "malformed JSON: unexpected end of body"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &meta.Error{Kind: meta.KindInvalid, Field: name, Msg: "unknown field"}
	}
	return &meta.Error{Kind: meta.KindInvalid, Msg: "malformed JSON: " + err.Error()}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "int32", "uint64", "uint32", "uint8", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return goKind
}

// isJSON reports whether content type ct is JSON (application/json or a
// +json type). Nothing else is read: a browser sends text/plain and forms
// to any site without asking (CSRF), but not JSON.
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// unsupportedMediaType is a body of a type that cannot hold JSON (415).
type unsupportedMediaType struct{ contentType string }

func (e *unsupportedMediaType) Error() string {
	return fmt.Sprintf("content type %q is not application/json", e.contentType)
}

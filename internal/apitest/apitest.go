// Package apitest holds every API request a test sends and every answer it
// gets to the OpenAPI document (pkg/openapi): a request the document
// refuses must be refused by the server (4xx), an answer must match the
// document for its route and status, and a route the document lacks is
// an error unless the server answered 404 or 405.
package apitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/clustermgr/clustermgr/pkg/openapi"
)

var registerDecoders sync.Once

// Validator checks exchanges against the document.
type Validator struct {
	router routers.Router
}

// New loads the document.
func New() (*Validator, error) {
	// The dashboard's files are text; kin-openapi decodes only text/plain
	// of the text types by default (its registry is global: once).
	registerDecoders.Do(func() {
		for _, t := range []string{"text/html", "text/javascript", "text/css"} {
			openapi3filter.RegisterBodyDecoder(t, openapi3filter.PlainBodyDecoder)
		}
	})
	doc, err := openapi3.NewLoader().LoadFromData(openapi.Document())
	if err != nil {
		return nil, fmt.Errorf("load openapi.json: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi router: %w", err)
	}
	return &Validator{router: r}, nil
}

// Check holds one exchange to the document: req (whose body was reqBody)
// answered with status, header and body.
func (v *Validator) Check(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	ctx := context.Background()
	r := req.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := v.router.FindRoute(r)
	if err != nil {
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			return nil
		}
		return fmt.Errorf("%s %s is not in the document, yet answered %d: %w", req.Method, req.URL.Path, status, err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true, IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
	var errs []error
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && status < 400 {
		errs = append(errs, fmt.Errorf("the server accepted (%d) a request the document refuses: %w", status, err))
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: opts}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		errs = append(errs, fmt.Errorf("the answer %d does not match the document: %w; body %.300s", status, err, body))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL.RequestURI(), err)
	}
	return nil
}

// Transport is an http.RoundTripper that checks every exchange it carries
// and reports a mismatch as an error of the test.
type Transport struct {
	Base http.RoundTripper
	T    testing.TB
	V    *Validator
}

// NewTransport returns a checking transport over base (nil: the default).
func NewTransport(t testing.TB, base http.RoundTripper) *Transport {
	t.Helper()
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &Transport{Base: base, T: t, V: v}
}

// RoundTrip implements http.RoundTripper.
func (c *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := c.Base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return resp, err
	}
	if err := c.V.Check(req, reqBody, resp.StatusCode, resp.Header, body); err != nil {
		c.T.Errorf("openapi: %v", err)
	}
	return resp, nil
}

// Middleware returns a handler wrapper that checks every exchange the
// wrapped API serves and reports a mismatch as an error of the test.
func Middleware(t testing.TB) func(http.Handler) http.Handler {
	t.Helper()
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var body []byte
			if r.Body != nil {
				body, _ = io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			rec := &recorder{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(rec, r)
			if err := v.Check(r, body, rec.status, w.Header(), rec.body.Bytes()); err != nil {
				t.Errorf("openapi: %v", err)
			}
		})
	}
}

// recorder keeps what a handler answered while passing it on.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.body.Write(p)
	return r.ResponseWriter.Write(p)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

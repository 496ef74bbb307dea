// Package openapi owns the OpenAPI 3 description of the REST API v1: the
// table of routes (method, path, scope, parameters, body and answer
// types), the reflection of the wire types of pkg/api into schemas, and
// the document built from them, kept in the repository as openapi.json
// and served by every replica at GET /v1/openapi.json. The package's
// tests rebuild the document and fail when the file is out of date
// (go test ./pkg/openapi -update rewrites it); the service's tests hold
// the router to the table and every request and answer to the document.
package openapi

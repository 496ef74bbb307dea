package openapi

import _ "embed"

//go:embed openapi.json
var document []byte

// Document returns the API document (JSON). The caller must not change it.
func Document() []byte { return document }

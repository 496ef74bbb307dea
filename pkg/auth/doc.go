// Package auth owns the API's credentials: bearer token secrets (made,
// hashed, read from and written to token files) and the scopes a token
// grants (read ⊂ operate ⊂ admin). Tokens themselves are kept, hashed, in
// the replicated state (meta.Token); the service checks them.
package auth

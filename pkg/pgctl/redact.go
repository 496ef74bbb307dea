package pgctl

import "regexp"

// Passwords in libpq connection strings, key=value form (quoted or not)
// and URI form.
var (
	kvPassword  = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)
	uriPassword = regexp.MustCompile(`(://[^:/@\s]*:)[^@\s]*@`)
)

// redact hides every password a text holds, so that the arguments and
// output of a failed program can be reported.
func redact(s string) string {
	s = kvPassword.ReplaceAllString(s, "password=REDACTED")
	return uriPassword.ReplaceAllString(s, "${1}REDACTED@")
}

package pgctl

import "regexp"

// Passwords in libpq connection strings, key=value form (quoted or not)
// and URI form.
var (
	kvPassword  = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)
	uriPassword = regexp.MustCompile(`(://[^:/@\s]*:)[^@\s]*@`)
)

// Redact hides every password a text holds (libpq key=value and URI
// forms), so that a failed program's arguments and output, or a failed
// statement, can be reported.
func Redact(s string) string {
	s = kvPassword.ReplaceAllString(s, "password=REDACTED")
	return uriPassword.ReplaceAllString(s, "${1}REDACTED@")
}

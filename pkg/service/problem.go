package service

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/ha"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// problemType returns the type URI of a problem with the given status.
func problemType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "urn:clustermgr:problem:invalid-input"
	case http.StatusNotFound:
		return "urn:clustermgr:problem:not-found"
	case http.StatusConflict:
		return "urn:clustermgr:problem:conflict"
	case http.StatusRequestEntityTooLarge:
		return "urn:clustermgr:problem:body-too-large"
	case http.StatusServiceUnavailable:
		return "urn:clustermgr:problem:no-leader"
	case http.StatusMethodNotAllowed:
		return "urn:clustermgr:problem:method-not-allowed"
	case http.StatusUnsupportedMediaType:
		return "urn:clustermgr:problem:unsupported-media-type"
	case http.StatusUnauthorized:
		return "urn:clustermgr:problem:unauthorized"
	case http.StatusForbidden:
		return "urn:clustermgr:problem:forbidden"
	}
	return "about:blank"
}

func writeProblem(w http.ResponseWriter, r *http.Request, p api.Problem) {
	if p.Type == "" {
		p.Type = problemType(p.Status)
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	p.Instance = r.URL.Path
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", api.ProblemContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeError maps an error to its problem document: typed meta errors to
// 400/404/409, not-leader to 503, a body over the limit to 413, anything
// else to 500.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		me     *meta.Error
		nl     *meta.NotLeaderError
		mbe    *http.MaxBytesError
		umt    *unsupportedMediaType
		unsafe *ha.UnsafeFailoverError
		keys   *keysMissingError
	)
	switch {
	case errors.As(err, &keys):
		writeProblem(w, r, api.Problem{Status: http.StatusServiceUnavailable, Type: "urn:clustermgr:problem:secret-key-missing", Detail: keys.Error()})
	case errors.As(err, &unsafe):
		loss := unsafe.LossBytes
		writeProblem(w, r, api.Problem{Status: http.StatusConflict, Detail: unsafe.Error(), ExpectedLossBytes: &loss})
	case errors.As(err, &umt):
		writeProblem(w, r, api.Problem{Status: http.StatusUnsupportedMediaType, Detail: umt.Error()})
	case errors.As(err, &me):
		status := map[meta.ErrorKind]int{
			meta.KindInvalid:  http.StatusBadRequest,
			meta.KindNotFound: http.StatusNotFound,
			meta.KindConflict: http.StatusConflict,
		}[me.Kind]
		if status == 0 {
			status = http.StatusInternalServerError
		}
		writeProblem(w, r, api.Problem{Status: status, Detail: me.Error(), Field: me.Field})
	case errors.As(err, &nl):
		detail := "no leader is known; retry shortly"
		if nl.LeaderID != "" {
			detail = "leadership is changing (leader " + nl.LeaderID + "); retry shortly"
		}
		writeProblem(w, r, api.Problem{Status: http.StatusServiceUnavailable, Detail: detail, LeaderID: nl.LeaderID})
	case errors.Is(err, ha.ErrUnavailable):
		writeProblem(w, r, api.Problem{Status: http.StatusServiceUnavailable, Detail: strings.TrimPrefix(err.Error(), ha.ErrUnavailable.Error()+": ")})
	case errors.As(err, &mbe):
		writeProblem(w, r, api.Problem{Status: http.StatusRequestEntityTooLarge, Detail: "request body is larger than the limit of " + strconv.FormatInt(mbe.Limit, 10) + " bytes"})
	default:
		writeProblem(w, r, api.Problem{Status: http.StatusInternalServerError, Detail: err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// problemDetail returns the detail of a problem document (the outcome of
// a refused request in the audit trail), at most 500 bytes of it.
func problemDetail(body []byte) string {
	var p api.Problem
	if err := json.Unmarshal(body, &p); err != nil || p.Detail == "" {
		return "refused"
	}
	return meta.Truncate(p.Detail, 500)
}

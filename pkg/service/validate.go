package service

import (
	"errors"
	"net"
	"net/url"
	"strconv"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/pgconf"
)

func invalidField(field, msg string) error {
	return &meta.Error{Kind: meta.KindInvalid, Field: field, Msg: msg}
}

// validateHostPort checks "host:port" with a port in range.
func validateHostPort(field, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		return invalidField(field, strconv.Quote(v)+" is not host:port")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return invalidField(field, "port "+strconv.Quote(port)+" is out of range 1-65535")
	}
	return nil
}

func validateJoin(req api.JoinRequest) error {
	if err := meta.ValidateName("id", req.ID); err != nil {
		return err
	}
	if err := validateHostPort("raft_addr", req.RaftAddr); err != nil {
		return err
	}
	if req.APIAddr == "" {
		return invalidField("api_addr", "is required")
	}
	u, err := url.Parse(req.APIAddr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalidField("api_addr", strconv.Quote(req.APIAddr)+" is not an http(s) URL")
	}
	return nil
}

// validParameters refuses PostgreSQL parameters of the wrong shape or that
// the manager owns (pgconf.Validate), naming the key; the agent checks
// the values with the server's own binary before it writes them.
func validParameters(params map[string]string) error {
	var pe *pgconf.Error
	if err := pgconf.Validate(params); errors.As(err, &pe) {
		return &meta.Error{Kind: meta.KindInvalid, Field: "parameters." + pe.Key, Msg: pe.Msg}
	} else if err != nil {
		return err
	}
	return nil
}

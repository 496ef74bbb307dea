package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/clustermgr/clustermgr/pkg/pgconf"
)

// checkParameters refuses parameters the manager owns or of the wrong
// shape (pgconf.Validate), then has this host's postgres binary parse
// them all (postgres -C port -c name=value ...) against an empty
// configuration: PostgreSQL's own check of names, types, ranges and enum
// values, before any data directory is made.
func (s *Server) checkParameters(ctx context.Context, params map[string]string) error {
	if len(params) == 0 {
		return nil
	}
	if err := pgconf.Validate(params); err != nil {
		return &badRequest{"parameters." + err.Error()}
	}
	if len(s.roots) == 0 {
		return &badRequest{"this agent has no data root configured (--data-root): it checks no parameters"}
	}
	if err := os.MkdirAll(s.roots[0], 0o755); err != nil {
		return fmt.Errorf("check parameters: %w", err)
	}
	dir, err := os.MkdirTemp(s.roots[0], ".paramcheck-")
	if err != nil {
		return fmt.Errorf("check parameters: %w", err)
	}
	defer os.RemoveAll(dir)
	conf := filepath.Join(dir, "postgresql.conf")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		return fmt.Errorf("check parameters: %w", err)
	}
	if err := s.runner.Chown(dir); err != nil {
		return err
	}
	if err := s.runner.Chown(conf); err != nil {
		return err
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := []string{"-D", dir, "-C", "port"}
	for _, k := range keys {
		args = append(args, "-c", k+"="+params[k])
	}
	out, err := s.runner.Run(ctx, "postgres", args...)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// PostgreSQL names the parameter: FATAL:  invalid value for
	// parameter "work_mem": "abc" (and a HINT line with the choices).
	var why []string
	for _, line := range strings.Split(out, "\n") {
		for _, tag := range []string{"FATAL:", "HINT:", "DETAIL:"} {
			if _, msg, ok := strings.Cut(line, tag); ok {
				why = append(why, strings.TrimSpace(msg))
			}
		}
	}
	if len(why) == 0 {
		return fmt.Errorf("check parameters: %w", err)
	}
	return &badRequest{"parameters: " + strings.Join(why, "; ")}
}

// checkParametersCommand is POST /v1/agent/check-parameters: PostgreSQL's
// own check of the parameters (checkParameters), before a manager
// records them.
func (s *Server) checkParametersCommand(ctx context.Context, req Request) (Result, error) {
	if len(req.Parameters) == 0 {
		return Result{}, &badRequest{"parameters are required"}
	}
	if err := s.checkParameters(ctx, req.Parameters); err != nil {
		return Result{}, err
	}
	return Result{Status: Status{DataDir: req.DataDir}}, nil
}

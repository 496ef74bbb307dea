package meta

import (
	"bytes"
	"context"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// slogWriter carries hashicorp/raft's hclog lines into slog.
type slogWriter struct{ logger *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	switch {
	case bytes.Contains(p, []byte("[ERROR]")):
		w.logger.Error(line)
	case bytes.Contains(p, []byte("[WARN]")):
		w.logger.Warn(line)
	default:
		w.logger.Info(line)
	}
	return len(p), nil
}

func newRaftLogger(l *slog.Logger) hclog.Logger {
	level := hclog.Info
	if !l.Enabled(context.Background(), slog.LevelInfo) {
		level = hclog.Warn
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:            "raft",
		Level:           level,
		Output:          slogWriter{logger: l.With("component", "raft")},
		DisableTime:     true,
		IncludeLocation: false,
	})
}

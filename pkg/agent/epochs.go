package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/clustermgr/clustermgr/pkg/fencing"
)

// epochFile is where the newest epoch seen per data directory is kept, so
// that a restarted agent (a host that came back) still refuses commands
// of a deposed leader's older epoch.
func (s *Server) epochFile() string {
	if len(s.roots) == 0 {
		return ""
	}
	return filepath.Join(s.roots[0], ".clustermgr-agent", "epochs.json")
}

// loadEpochs reads the persisted epochs; a missing file is a new agent.
func (s *Server) loadEpochs() error {
	path := s.epochFile()
	data, err := readOwnFile(path)
	if err != nil || data == nil {
		return err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("read fencing epochs %s: %w", path, err)
	}
	for dir, v := range raw {
		var tok fencing.Token
		// An agent of an earlier version kept the epoch alone.
		if err := json.Unmarshal(v, &tok.Epoch); err != nil {
			dec := json.NewDecoder(bytes.NewReader(v))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&tok); err != nil {
				return fmt.Errorf("read fencing epochs %s: %s: %w", path, dir, err)
			}
		}
		s.epochs[dir] = tok
	}
	return nil
}

// readOwnFile reads one of the agent's own files: nil for none (no data
// root, or a new agent).
func readOwnFile(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// saveEpochs writes the epochs atomically (a temporary file, fsync,
// rename). Callers hold s.mu.
func (s *Server) saveEpochs() error {
	path := s.epochFile()
	if path == "" {
		return nil
	}
	// The data root itself is made as provisioning makes it (0755: the
	// database OS user works below it); only the agent's own folder is
	// private.
	if err := os.MkdirAll(s.roots[0], 0o755); err != nil {
		return fmt.Errorf("save fencing epochs: %w", err)
	}
	if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil && !os.IsExist(err) {
		return fmt.Errorf("save fencing epochs: %w", err)
	}
	data, err := json.Marshal(s.epochs)
	if err != nil {
		return err
	}
	if err := writeAtomic(path, data); err != nil {
		return fmt.Errorf("save fencing epochs: %w", err)
	}
	return nil
}

// writeAtomic replaces path (in the agent's own folder, made 0700 when
// missing) with data: a temporary file, fsync, rename, fsync of the
// folder, so that a power loss leaves the old file or the new one.
func writeAtomic(path string, data []byte) error {
	if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil && !os.IsExist(err) {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	// The rename is durable only once its directory is: a power loss
	// must not bring back an older file.
	return syncDir(filepath.Dir(path))
}

// syncDir makes the entries of dir (a rename into it) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

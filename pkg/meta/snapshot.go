package meta

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"
)

// SnapshotFormat names the snapshot format in its header.
const SnapshotFormat = "clustermgr-state"

// SnapshotVersion is the version written by this build. Restore accepts any
// version up to it; every older version must stay restorable (see the golden
// files in testdata).
const SnapshotVersion = 1

// snapshotHeader is the first line of a snapshot.
type snapshotHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

type snapshot struct {
	data    []byte
	encode  time.Duration
	written func(SnapshotInfo) // told of a snapshot written (nil: nobody)
}

// Persist writes the header line and the encoded state.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	if err := WriteSnapshot(sink, s.data); err != nil {
		_ = sink.Cancel()
		return err
	}
	if err := sink.Close(); err != nil {
		return err
	}
	if s.written != nil {
		s.written(SnapshotInfo{At: time.Now(), Bytes: len(s.data), Encode: s.encode, Persist: time.Since(start)})
	}
	return nil
}

func (s *snapshot) Release() {}

// WriteSnapshot writes a versioned header line followed by the encoded state.
func WriteSnapshot(w io.Writer, state []byte) error {
	hdr, err := json.Marshal(snapshotHeader{Format: SnapshotFormat, Version: SnapshotVersion})
	if err != nil {
		return fmt.Errorf("encode snapshot header: %w", err)
	}
	hdr = append(hdr, '\n')
	if _, err := w.Write(hdr); err != nil {
		return fmt.Errorf("write snapshot header: %w", err)
	}
	if _, err := w.Write(state); err != nil {
		return fmt.Errorf("write snapshot state: %w", err)
	}
	return nil
}

// ReadSnapshot decodes a snapshot written by this or an older version.
func ReadSnapshot(r io.Reader) (*State, error) {
	br := bufio.NewReader(r)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("read snapshot header: %w", err)
	}
	var hdr snapshotHeader
	if err := json.Unmarshal(line, &hdr); err != nil {
		return nil, fmt.Errorf("decode snapshot header: %w", err)
	}
	if hdr.Format != SnapshotFormat {
		return nil, fmt.Errorf("snapshot format %q is not %q", hdr.Format, SnapshotFormat)
	}
	if hdr.Version < 1 || hdr.Version > SnapshotVersion {
		return nil, fmt.Errorf("snapshot version %d is not supported (this build reads 1-%d)", hdr.Version, SnapshotVersion)
	}
	st := NewState()
	if err := json.NewDecoder(br).Decode(st); err != nil {
		return nil, fmt.Errorf("decode snapshot state: %w", err)
	}
	st.normalize()
	return st, nil
}

// normalize fills the maps a decoded state may lack (empty maps encode as
// null in older snapshots).
func (s *State) normalize() {
	if s.Agents == nil {
		s.Agents = map[string]*AgentRecord{}
	}
	if s.Tokens == nil {
		s.Tokens = map[string]*Token{}
	}
	if s.NextAuditID == 0 {
		s.NextAuditID = 1
	}
	if s.Members == nil {
		s.Members = map[string]*Member{}
	}
	if s.Clusters == nil {
		s.Clusters = map[string]*Cluster{}
	}
	if s.Operations == nil {
		s.Operations = map[string]*Operation{}
	}
	if s.Backups == nil {
		s.Backups = map[string]*Backup{}
	}
	if s.Schedules == nil {
		s.Schedules = map[string]*Schedule{}
	}
	if s.Webhooks == nil {
		s.Webhooks = map[string]*Webhook{}
	}
	if s.Events == nil {
		s.Events = []Event{}
	}
	if s.NextEventID == 0 {
		s.NextEventID = 1
	}
	for _, c := range s.Clusters {
		if c.Shards == nil {
			c.Shards = map[string]*Shard{}
		}
		for _, sh := range c.Shards {
			if sh.Nodes == nil {
				sh.Nodes = map[string]*Node{}
			}
		}
	}
}

package meta

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// handler applies one decoded command body to the state. It must validate
// everything before it changes anything, so that a rejected command leaves
// the state untouched.
type handler func(s *State, body []byte, index uint64) error

// decodeWith returns a handler that decodes the body into a C and passes it
// on. A body that cannot be decoded means this replica and the leader
// disagree about the log format: the replica stops rather than drift.
func decodeWith[C any](apply func(s *State, c *C, index uint64) error) handler {
	return func(s *State, body []byte, index uint64) error {
		var c C
		if err := json.Unmarshal(body, &c); err != nil {
			panic(fmt.Sprintf("meta: cannot decode %T at log index %d: %v", c, index, err))
		}
		return apply(s, &c, index)
	}
}

// FSM is the raft.FSM of the manager group.
type FSM struct {
	mu       sync.RWMutex
	state    *State
	handlers map[CommandType]handler
}

// NewFSM returns an FSM over an empty state.
func NewFSM() *FSM {
	return &FSM{
		state: NewState(),
		handlers: map[CommandType]handler{
			CmdSetMember:       decodeWith(applySetMember),
			CmdRemoveMember:    decodeWith(applyRemoveMember),
			CmdCreateCluster:   decodeWith(applyCreateCluster),
			CmdUpdateCluster:   decodeWith(applyUpdateCluster),
			CmdDeleteCluster:   decodeWith(applyDeleteCluster),
			CmdCreateShard:     decodeWith(applyCreateShard),
			CmdDeleteShard:     decodeWith(applyDeleteShard),
			CmdAddNode:         decodeWith(applyAddNode),
			CmdRemoveNode:      decodeWith(applyRemoveNode),
			CmdPutOperation:    decodeWith(applyPutOperation),
			CmdSetPrimary:      decodeWith(applySetPrimary),
			CmdSetSyncSet:      decodeWith(applySetSyncSet),
			CmdUpdateShard:     decodeWith(applyUpdateShard),
			CmdRecordEvent:     decodeWith(applyRecordEvent),
			CmdPutBackup:       decodeWith(applyPutBackup),
			CmdDeleteBackup:    decodeWith(applyDeleteBackup),
			CmdSetPeerSecret:   decodeWith(applySetPeerSecret),
			CmdCancelOperation: decodeWith(applyCancelOperation),
			CmdStepOperation:   decodeWith(applyStepOperation),
			CmdFinishOperation: decodeWith(applyFinishOperation),
			CmdPutToken:        decodeWith(applyPutToken),
			CmdRevokeToken:     decodeWith(applyRevokeToken),
			CmdRecordAudit:     decodeWith(applyRecordAudit),
		},
	}
}

// Apply implements raft.FSM. It returns nil or the command's *Error.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand || len(l.Data) == 0 {
		return nil
	}
	typ := CommandType(l.Data[0])
	h, ok := f.handlers[typ]
	if !ok {
		if typ&IgnoreUnknown != 0 {
			return nil
		}
		panic(fmt.Sprintf("meta: unknown command type %d at log index %d; this replica is older than the log", typ, l.Index))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := h(f.state, l.Data[1:], l.Index); err != nil {
		return err
	}
	return nil
}

// View runs fn with the state under the read lock. fn must not keep or
// change anything it is given.
func (f *FSM) View(fn func(*State) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return fn(f.state)
}

// Snapshot implements raft.FSM: the state is encoded under the read lock so
// that Persist can write it while Apply goes on.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	data, err := json.Marshal(f.state)
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return &snapshot{data: data}, nil
}

// Restore implements raft.FSM: it replaces the whole state.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := ReadSnapshot(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.state = st
	f.mu.Unlock()
	return nil
}

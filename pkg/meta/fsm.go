package meta

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// handler applies one decoded command body to the state. It must validate
// everything before it changes anything, so that a rejected command leaves
// the state untouched; in a check pass it returns before its first change.
type handler func(s *State, body []byte, p pass) error

// pass is how a handler runs: applying the committed entry at index, or
// only checking a command the leader is about to propose (FSM.Check).
type pass struct {
	index uint64
	check bool
}

// decodeWith returns a handler that decodes the body into a C and passes it
// on. A body that cannot be decoded means this replica and the leader
// disagree about the log format: the replica stops rather than drift.
func decodeWith[C any](apply func(s *State, c *C, p pass) error) handler {
	return func(s *State, body []byte, p pass) error {
		var c C
		if err := json.Unmarshal(body, &c); err != nil {
			if p.check {
				return fmt.Errorf("decode %T: %w", c, err)
			}
			panic(fmt.Sprintf("meta: cannot decode %T at log index %d: %v", c, p.index, err))
		}
		return apply(s, &c, p)
	}
}

// FSM is the raft.FSM of the manager group.
type FSM struct {
	mu       sync.RWMutex
	state    *State
	handlers map[CommandType]handler

	// applied counts the bytes of the commands applied since start.
	applied atomic.Uint64
	snapMu  sync.Mutex
	lastSn  SnapshotInfo // the last snapshot written
}

// SnapshotInfo describes the last snapshot a replica wrote: when, its
// size and the time spent encoding the state (under the state's read
// lock) and writing it.
type SnapshotInfo struct {
	At      time.Time     `json:"at"`
	Bytes   int           `json:"bytes"`
	Encode  time.Duration `json:"encode"`
	Persist time.Duration `json:"persist"`
}

// LastSnapshot returns the last snapshot written (zero when none since
// start).
func (f *FSM) LastSnapshot() SnapshotInfo {
	f.snapMu.Lock()
	defer f.snapMu.Unlock()
	return f.lastSn
}

// AppliedBytes is the size of the commands applied since start: the
// growth of the Raft log.
func (f *FSM) AppliedBytes() uint64 { return f.applied.Load() }

func (f *FSM) snapshotWritten(si SnapshotInfo) {
	f.snapMu.Lock()
	defer f.snapMu.Unlock()
	f.lastSn = si
}

// NewFSM returns an FSM over an empty state.
func NewFSM() *FSM {
	return &FSM{
		state: NewState(),
		handlers: map[CommandType]handler{
			CmdSetMember:        decodeWith(applySetMember),
			CmdRemoveMember:     decodeWith(applyRemoveMember),
			CmdCreateCluster:    decodeWith(applyCreateCluster),
			CmdUpdateCluster:    decodeWith(applyUpdateCluster),
			CmdDeleteCluster:    decodeWith(applyDeleteCluster),
			CmdCreateShard:      decodeWith(applyCreateShard),
			CmdDeleteShard:      decodeWith(applyDeleteShard),
			CmdAddNode:          decodeWith(applyAddNode),
			CmdRemoveNode:       decodeWith(applyRemoveNode),
			CmdPutOperation:     decodeWith(applyPutOperation),
			CmdSetPrimary:       decodeWith(applySetPrimary),
			CmdSetSyncSet:       decodeWith(applySetSyncSet),
			CmdUpdateShard:      decodeWith(applyUpdateShard),
			CmdRecordEvent:      decodeWith(applyRecordEvent),
			CmdPutBackup:        decodeWith(applyPutBackup),
			CmdDeleteBackup:     decodeWith(applyDeleteBackup),
			CmdSetPeerSecret:    decodeWith(applySetPeerSecret),
			CmdCancelOperation:  decodeWith(applyCancelOperation),
			CmdStepOperation:    decodeWith(applyStepOperation),
			CmdFinishOperation:  decodeWith(applyFinishOperation),
			CmdPutToken:         decodeWith(applyPutToken),
			CmdRevokeToken:      decodeWith(applyRevokeToken),
			CmdRecordAudit:      decodeWith(applyRecordAudit),
			CmdPutAgent:         decodeWith(applyPutAgent),
			CmdDeleteAgent:      decodeWith(applyDeleteAgent),
			CmdResealSecrets:    decodeWith(applyResealSecrets),
			CmdParamsApplied:    decodeWith(applyParamsApplied),
			CmdSetMaintenance:   decodeWith(applySetMaintenance),
			CmdPutSchedule:      decodeWith(applyPutSchedule),
			CmdSetSchedule:      decodeWith(applySetSchedule),
			CmdPutWebhook:       decodeWith(applyPutWebhook),
			CmdDeleteWebhook:    decodeWith(applyDeleteWebhook),
			CmdWebhookDelivered: decodeWith(applyWebhookDelivered),
			CmdSetLevel:         decodeWith(applySetLevel),
		},
	}
}

// Apply implements raft.FSM. It returns nil or the command's *Error.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand || len(l.Data) == 0 {
		return nil
	}
	f.applied.Add(uint64(len(l.Data)))
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
	f.state.Generation++
	if !historyOnly(typ) {
		f.state.FleetGeneration++
	}
	if err := h(f.state, l.Data[1:], pass{index: l.Index}); err != nil {
		return err
	}
	return nil
}

// historyOnly reports whether commands of type typ change only the
// event history, the audit trail or a webhook's position: nothing
// derived from the fleet (State.FleetGeneration).
func historyOnly(typ CommandType) bool {
	return typ == CmdRecordEvent || typ == CmdRecordAudit || typ == CmdWebhookDelivered
}

// Check returns the error the encoded command data would get if it were
// applied now, without changing the state: the leader checks a command
// before proposing it, so that one refused now never reaches the log (the
// FSM checks again when it applies it, against the state then).
func (f *FSM) Check(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	h, ok := f.handlers[CommandType(data[0])]
	if !ok {
		return nil
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	return h(f.state, data[1:], pass{check: true})
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
	start := time.Now()
	f.mu.RLock()
	defer f.mu.RUnlock()
	data, err := json.Marshal(f.state)
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return &snapshot{data: data, encode: time.Since(start), written: f.snapshotWritten}, nil
}

// Restore implements raft.FSM: it replaces the whole state.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := ReadSnapshot(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	st.Generation = f.state.Generation + 1
	st.FleetGeneration = f.state.FleetGeneration + 1
	f.state = st
	f.mu.Unlock()
	return nil
}

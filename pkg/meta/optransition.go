package meta

import (
	"encoding/json"
)

// Operation transitions. An operation is created whole (PutOperation) and
// then moves by typed commands: StepOperation (one step to its next
// state, in order) and FinishOperation (the end). The FSM checks each: an
// operation keeps its identity and steps, moves only forward, and is never
// changed once finished. A PutOperation of an existing operation, as
// earlier versions wrote, is still applied (logs are replayed) and checked
// as a transition of the whole.

// stepNext lists the states a step may move to from each state. A running
// step may be marked running again: a new leader resumes it.
var stepNext = map[string]map[string]bool{
	StepPending: {StepPending: true, StepRunning: true, StepSkipped: true},
	StepRunning: {StepRunning: true, StepDone: true, StepFailed: true, StepSkipped: true},
	StepDone:    {StepDone: true},
	StepFailed:  {StepFailed: true},
	StepSkipped: {StepSkipped: true},
}

// checkNewOperation validates an operation being created.
func checkNewOperation(op *Operation) error {
	if op.State != OpRunning {
		return invalid("state", "a new operation must be %s, not %q", OpRunning, op.State)
	}
	for i, st := range op.Steps {
		if st.State != StepPending {
			return invalid("steps", "step %d (%s) of a new operation is %q, not %s", i, st.Name, st.State, StepPending)
		}
	}
	return nil
}

// checkOperationUpdate validates next as the successor of cur.
func checkOperationUpdate(cur, next *Operation) error {
	if cur.Finished() {
		return conflict("operation %s has already %s", cur.ID, cur.State)
	}
	switch {
	case next.Kind != cur.Kind, next.Cluster != cur.Cluster, next.Shard != cur.Shard,
		next.Target != cur.Target, next.From != cur.From, next.Epoch != cur.Epoch:
		return conflict("operation %s: kind, shard, target, old primary and epoch cannot change", cur.ID)
	}
	switch next.State {
	case OpRunning, OpSucceeded, OpFailed, OpCancelled:
	default:
		return invalid("state", "%q is not an operation state", next.State)
	}
	if len(next.Steps) != len(cur.Steps) {
		return conflict("operation %s has %d steps, not %d", cur.ID, len(cur.Steps), len(next.Steps))
	}
	for i := range next.Steps {
		from, to := cur.Steps[i], next.Steps[i]
		if to.Name != from.Name {
			return conflict("operation %s: step %d is %s, not %s", cur.ID, i, from.Name, to.Name)
		}
		if !stepNext[from.State][to.State] {
			return conflict("operation %s: step %s cannot go from %s to %s", cur.ID, from.Name, from.State, to.State)
		}
	}
	if next.State == OpSucceeded {
		for _, st := range next.Steps {
			if st.State != StepDone && st.State != StepSkipped {
				return conflict("operation %s cannot succeed with step %s %s", cur.ID, st.Name, st.State)
			}
		}
	}
	return nil
}

// applyStepOperation moves one step of a running operation.
func applyStepOperation(s *State, c *StepOperation, p pass) error {
	op, err := s.runningOperation(c.ID)
	if err != nil {
		return err
	}
	if c.Step < 0 || c.Step >= len(op.Steps) {
		return invalid("step", "operation %s has no step %d", c.ID, c.Step)
	}
	cur := op.Steps[c.Step]
	if cur.Name != c.Name {
		return conflict("operation %s: step %d is %s, not %s", c.ID, c.Step, cur.Name, c.Name)
	}
	if !stepNext[cur.State][c.State] {
		return conflict("operation %s: step %s cannot go from %s to %s", c.ID, cur.Name, cur.State, c.State)
	}
	if c.State == StepRunning {
		for i := 0; i < c.Step; i++ {
			if st := op.Steps[i].State; st != StepDone && st != StepSkipped {
				return conflict("operation %s: step %s cannot run before step %s (%s)", c.ID, c.Name, op.Steps[i].Name, st)
			}
		}
	}
	if c.Progress < 0 || c.Progress > 100 {
		return invalid("progress", "%d is not a percentage", c.Progress)
	}
	if p.check {
		return nil
	}
	steps := append([]OperationStep(nil), op.Steps...)
	steps[c.Step] = OperationStep{Name: cur.Name, State: c.State, Detail: c.Detail, At: c.At}
	op.Steps = steps
	if c.Progress > op.Progress {
		op.Progress = c.Progress
	}
	if len(c.Spec) > 0 {
		op.Spec = append(json.RawMessage(nil), c.Spec...)
	}
	op.UpdatedAt = c.At
	return nil
}

// applyFinishOperation ends a running operation.
func applyFinishOperation(s *State, c *FinishOperation, p pass) error {
	op, err := s.runningOperation(c.ID)
	if err != nil {
		return err
	}
	steps := append([]OperationStep(nil), op.Steps...)
	progress := op.Progress
	switch c.State {
	case OpSucceeded:
		for _, st := range steps {
			if st.State != StepDone && st.State != StepSkipped {
				return conflict("operation %s cannot succeed with step %s %s", c.ID, st.Name, st.State)
			}
		}
		progress = 100
	case OpFailed, OpCancelled:
		if c.Error == "" {
			return invalid("error", "a %s operation must say why", c.State)
		}
		for i := range steps {
			switch steps[i].State {
			case StepRunning:
				steps[i] = OperationStep{Name: steps[i].Name, State: StepFailed, Detail: c.Error, At: c.At}
			case StepPending:
				steps[i].State = StepSkipped
			}
		}
	default:
		return invalid("state", "%q does not finish an operation", c.State)
	}
	if p.check {
		return nil
	}
	op.Steps, op.Progress = steps, progress
	op.State, op.Error, op.UpdatedAt = c.State, c.Error, c.At
	s.addFinishedEvent(op, c.At)
	s.trimOperations()
	return nil
}

// runningOperation is the operation id, which must exist and not have
// finished.
func (s *State) runningOperation(id string) (*Operation, error) {
	op, ok := s.Operations[id]
	if !ok {
		return nil, notFound("operation %q does not exist", id)
	}
	if op.Finished() {
		return nil, conflict("operation %s has already %s", id, op.State)
	}
	return op, nil
}

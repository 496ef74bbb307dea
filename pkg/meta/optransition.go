package meta

// Operation transitions, checked by the FSM on every PutOperation: an
// operation keeps its identity and steps, moves only forward, and is
// never changed once finished.

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

package meta

import (
	"strings"
	"testing"
)

func runningOp() Operation {
	return Operation{ID: "op-1", Kind: "failover", Cluster: "orders", Shard: "s1", Target: "pg2", From: "pg1", Epoch: 2, State: OpRunning,
		Steps: []OperationStep{{Name: "fence", State: StepPending}, {Name: "promote", State: StepPending}}}
}

// TestPutOperation_Transitions: an operation moves only forward, keeps
// its identity and steps, and is frozen once finished; a refused update
// leaves it as it was.
func TestPutOperation_Transitions(t *testing.T) {
	cases := []struct {
		name   string
		change func(op *Operation)
		err    string // "" when accepted
	}{
		{"a step starts", func(op *Operation) { op.Steps[0].State = StepRunning }, ""},
		{"a step is skipped", func(op *Operation) { op.Steps[0].State = StepSkipped }, ""},
		{"a pending step cannot be done without running", func(op *Operation) { op.Steps[0].State = StepDone }, "cannot go from pending to done"},
		{"the target cannot change", func(op *Operation) { op.Target = "pg3" }, "cannot change"},
		{"the epoch cannot change", func(op *Operation) { op.Epoch = 3 }, "cannot change"},
		{"steps cannot be added", func(op *Operation) { op.Steps = append(op.Steps, OperationStep{Name: "x", State: StepPending}) }, "has 2 steps"},
		{"steps cannot be renamed", func(op *Operation) { op.Steps[1].Name = "other" }, "step 1 is promote"},
		{"no success with a pending step", func(op *Operation) { op.State = OpSucceeded }, "cannot succeed with step fence pending"},
		{"unknown state", func(op *Operation) { op.State = "paused" }, "is not an operation state"},
		{"failure", func(op *Operation) { op.State = OpFailed; op.Error = "boom" }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newApplier()
			a.must(t, &CreateCluster{Name: "orders"})
			a.must(t, &PutOperation{Operation: runningOp()})
			next := runningOp()
			c.change(&next)
			err := a.apply(t, &PutOperation{Operation: next})
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("update: %v, want %q", err, c.err)
			}
			if c.err != "" {
				if got := a.fsm.state.Operations["op-1"]; got.Target != "pg2" || got.Steps[0].State != StepPending || got.State != OpRunning {
					t.Fatalf("a refused update changed the operation: %+v", got)
				}
			}
		})
	}
}

func TestPutOperation_FinishedIsFrozenAndNewMustBePending(t *testing.T) {
	a := newApplier()
	a.must(t, &CreateCluster{Name: "orders"})
	op := runningOp()
	op.Steps[0].State = StepRunning
	if err := a.apply(t, &PutOperation{Operation: op}); err == nil || !strings.Contains(err.Error(), "not pending") {
		t.Fatalf("a new operation with a running step: %v", err)
	}
	op = runningOp()
	a.must(t, &PutOperation{Operation: op})
	op.State = OpCancelled
	op.Steps[0].State, op.Steps[1].State = StepSkipped, StepSkipped
	a.must(t, &PutOperation{Operation: op})
	op.State = OpRunning
	if err := a.apply(t, &PutOperation{Operation: op}); err == nil || !strings.Contains(err.Error(), "already cancelled") {
		t.Fatalf("a finished operation changed again: %v", err)
	}
	if err := a.apply(t, &CancelOperation{ID: "op-1"}); err == nil || !strings.Contains(err.Error(), "already cancelled") {
		t.Fatalf("cancel of a finished operation: %v", err)
	}
}

// TestStepAndFinishOperation: steps move one at a time, in order, forward
// only; the end marks what was running failed and what was pending
// skipped; nothing changes once finished; a refused command changes
// nothing.
func TestStepAndFinishOperation(t *testing.T) {
	a := newApplier()
	a.must(t, &CreateCluster{Name: "orders"})
	a.must(t, &PutOperation{Operation: runningOp()})
	for _, c := range []struct {
		name string
		cmd  Command
		err  string
	}{
		{"the second step cannot run first", &StepOperation{ID: "op-1", Step: 1, Name: "promote", State: StepRunning}, "cannot run before step fence"},
		{"a pending step cannot be done", &StepOperation{ID: "op-1", Step: 0, Name: "fence", State: StepDone}, "cannot go from pending to done"},
		{"the name must match", &StepOperation{ID: "op-1", Step: 0, Name: "promote", State: StepRunning}, "step 0 is fence"},
		{"no such step", &StepOperation{ID: "op-1", Step: 2, Name: "x", State: StepRunning}, "has no step 2"},
		{"no such operation", &StepOperation{ID: "op-9", Step: 0, Name: "fence", State: StepRunning}, "does not exist"},
		{"success with pending steps", &FinishOperation{ID: "op-1", State: OpSucceeded}, "cannot succeed with step fence pending"},
		{"a failure says why", &FinishOperation{ID: "op-1", State: OpFailed}, "must say why"},
		{"not an end state", &FinishOperation{ID: "op-1", State: OpRunning}, "does not finish"},
	} {
		if err := a.apply(t, c.cmd); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %v, want %q", c.name, err, c.err)
		}
	}
	if got := a.fsm.state.Operations["op-1"]; got.Steps[0].State != StepPending || got.State != OpRunning {
		t.Fatalf("refused commands changed the operation: %+v", got)
	}
	a.must(t, &StepOperation{ID: "op-1", Step: 0, Name: "fence", State: StepRunning})
	a.must(t, &StepOperation{ID: "op-1", Step: 0, Name: "fence", State: StepDone, Detail: "killed pg1", Progress: 50, Spec: []byte(`{"x":1}`)})
	a.must(t, &StepOperation{ID: "op-1", Step: 1, Name: "promote", State: StepRunning})
	a.must(t, &FinishOperation{ID: "op-1", State: OpCancelled, Error: "preempted: primary pg1 is down"})
	got := a.fsm.state.Operations["op-1"]
	if got.State != OpCancelled || got.Error != "preempted: primary pg1 is down" || got.Progress != 50 || string(got.Spec) != `{"x":1}` ||
		got.Steps[0].State != StepDone || got.Steps[0].Detail != "killed pg1" ||
		got.Steps[1].State != StepFailed || got.Steps[1].Detail != "preempted: primary pg1 is down" {
		t.Fatalf("after steps and the end: %+v", got)
	}
	if err := a.apply(t, &StepOperation{ID: "op-1", Step: 1, Name: "promote", State: StepDone}); err == nil || !strings.Contains(err.Error(), "already cancelled") {
		t.Fatalf("a step of a finished operation: %v", err)
	}
	if err := a.apply(t, &FinishOperation{ID: "op-1", State: OpFailed, Error: "x"}); err == nil || !strings.Contains(err.Error(), "already cancelled") {
		t.Fatalf("a second end: %v", err)
	}
}

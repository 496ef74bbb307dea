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

package fencing

import (
	"context"
	"testing"
)

func TestToken_OlderThan(t *testing.T) {
	seen := Token{Term: 5, Epoch: 9}
	for _, tc := range []struct {
		tok  Token
		want bool
	}{
		{Token{5, 9}, false},  // the same leader and operation again
		{Token{6, 9}, false},  // a new leader resuming the operation
		{Token{5, 10}, false}, // the same leader's next promotion
		{Token{4, 9}, true},   // a deposed leader
		{Token{4, 10}, true},  // a deposed leader, whatever epoch it names
		{Token{6, 8}, true},   // a superseded operation
		{Token{0, 9}, true},   // no term once a term has been seen
	} {
		if got := tc.tok.OlderThan(seen); got != tc.want {
			t.Errorf("%v.OlderThan(%v) = %v, want %v", tc.tok, seen, got, tc.want)
		}
	}
	if got, want := (Token{6, 8}).Join(seen), (Token{6, 9}); got != want {
		t.Errorf("Join = %v, want %v", got, want)
	}
}

func TestTerm_Context(t *testing.T) {
	if got := Term(context.Background()); got != 0 {
		t.Errorf("Term of a bare context = %d, want 0", got)
	}
	if got := Term(WithTerm(context.Background(), 7)); got != 7 {
		t.Errorf("Term = %d, want 7", got)
	}
}

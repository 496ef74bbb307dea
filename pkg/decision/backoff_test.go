package decision

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRetryBackoff(t *testing.T) {
	var got []time.Duration
	for f := 0; f <= 6; f++ {
		got = append(got, RetryBackoff(f, 10*time.Second))
	}
	want := []time.Duration{10 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 80 * time.Second, 80 * time.Second}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

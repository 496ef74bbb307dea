package collector

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseHistory(t *testing.T) {
	h, err := ParseHistory("1\t0/5000028\tno recovery target specified\n\n2\t0/7000120\tno recovery target specified\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []TimelineSwitch{{Timeline: 1, Switch: 0x5000028}, {Timeline: 2, Switch: 0x7000120}}
	if d := cmp.Diff(want, h); d != "" {
		t.Fatal(d)
	}
	for _, c := range []struct {
		tl   uint32
		lsn  LSN
		want bool
	}{
		{1, 0x5000028, true},  // at the switch: the whole of timeline 1 that 2 has
		{1, 0x4000000, false}, // behind it: PostgreSQL could adopt timeline 2 before its start
		{1, 0x5000029, false}, // past it: WAL of timeline 1 the history does not have
		{2, 0x7000120, true},
		{3, 0x1, false}, // not an ancestor
	} {
		if got := OnHistory(h, c.tl, c.lsn); got != c.want {
			t.Errorf("OnHistory(tl %d, %s) = %v, want %v", c.tl, c.lsn, got, c.want)
		}
	}
	for _, bad := range []string{"1", "x\t0/1\tr", "1\tzz\tr", "2\t0/5\tr\n1\t0/6\tr", "1\t0/6\tr\n2\t0/5\tr"} {
		if _, err := ParseHistory(bad); err == nil {
			t.Errorf("ParseHistory(%q): no error", bad)
		}
	}
	files, err := HistoryFiles(3, "1\t0/5000028\tno recovery target specified\n\n2\t0/7000120\tno recovery target specified\n")
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := map[string]string{
		"00000003.history": "1\t0/5000028\tno recovery target specified\n\n2\t0/7000120\tno recovery target specified\n",
		"00000002.history": "1\t0/5000028\tno recovery target specified\n",
	}
	if d := cmp.Diff(wantFiles, files); d != "" {
		t.Fatal(d)
	}
	if !IsHistoryFileName(HistoryFileName(10)) || HistoryFileName(10) != "0000000A.history" || IsHistoryFileName("../x.history") {
		t.Error("history file names")
	}
}

package pgctl

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// TestPostmasterPID_ForeignProcessIsNotRunningHere: a postmaster.pid
// naming a process that does not run in the data directory (a planted
// file, a reused pid) names no postmaster, so nothing signals it.
func TestPostmasterPID_ForeignProcessIsNotRunningHere(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	victim := exec.Command("sleep", "60")
	victim.Dir = dir // elsewhere than the data directory
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- victim.Wait() }()
	t.Cleanup(func() {
		_ = victim.Process.Kill()
		<-done
	})
	pidFile := filepath.Join(data, "postmaster.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(victim.Process.Pid)+"\n"+data+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pid, alive := PostmasterPID(data); alive || pid != victim.Process.Pid {
		t.Fatalf("PostmasterPID = %d, %v: a process outside the data directory counts as its postmaster", pid, alive)
	}
	if err := Kill(data, syscall.SIGKILL); err == nil {
		t.Fatal("Kill signalled a process that is not the data directory's postmaster")
	}
	select {
	case err := <-done:
		t.Fatalf("the foreign process died: %v", err)
	default:
	}
	// The same process running in the data directory is its postmaster
	// as far as the pid file can tell.
	inside := exec.Command("sleep", "60")
	inside.Dir = data
	if err := inside.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = inside.Process.Kill()
		_ = inside.Wait()
	})
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(inside.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, alive := PostmasterPID(data); !alive {
		t.Fatal("a process running in the data directory is not seen")
	}
}

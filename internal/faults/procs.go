package faults

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Proc is one clustermgr process (a manager replica or an agent) that can
// be killed, frozen and started again with the same arguments.
type Proc struct {
	Name    string
	args    []string
	env     []string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

// Running reports whether the process runs.
func (p *Proc) Running() bool { return p.cmd != nil }

func (p *Proc) start(t testing.TB, bin string) {
	t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.Name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.cmd, p.done = cmd, done
}

// Kill sends SIGKILL (after SIGCONT, in case it is frozen) and waits for
// the process to exit.
func (p *Proc) Kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	<-p.done
	p.cmd, p.done = nil, nil
}

// Signal sends sig (SIGSTOP, SIGCONT) to a running process.
func (p *Proc) Signal(sig syscall.Signal) {
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// Log returns the last n bytes of the process's log.
func (p *Proc) Log(n int) string {
	data, _ := os.ReadFile(p.logPath)
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}

// waitFor polls cond every 50 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func must(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

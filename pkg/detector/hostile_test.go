package detector_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/fleetsim"
	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/detector"
)

// hostileServer accepts connections, reads the client's startup (after
// refusing TLS), and answers with reply, then keeps the connection open
// until the client goes.
func hostileServer(t *testing.T, reply []byte) (host string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				for {
					var hdr [8]byte
					if _, err := io.ReadFull(c, hdr[:]); err != nil {
						return
					}
					n := int(binary.BigEndian.Uint32(hdr[:4]))
					if n == 8 && binary.BigEndian.Uint32(hdr[4:]) == 80877103 { // SSLRequest
						_, _ = c.Write([]byte{'N'})
						continue
					}
					if _, err := io.CopyN(io.Discard, c, int64(n-8)); err != nil {
						return
					}
					_, _ = c.Write(reply)
					_, _ = io.Copy(io.Discard, c)
					return
				}
			}()
		}
	}()
	a := ln.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

// TestDetector_OversizeMessageCostsBoundedMemory: a server that announces
// a 1 GiB message costs the probe an error, not the memory.
func TestDetector_OversizeMessageCostsBoundedMemory(t *testing.T) {
	reply := make([]byte, 5, 5+1024)
	reply[0] = 'R' // an authentication request of 1 GiB
	binary.BigEndian.PutUint32(reply[1:], 1<<30+4)
	reply = append(reply, make([]byte, 1024)...)
	host, port := hostileServer(t, reply)
	d := detector.New(2*time.Second, time.Now, "")
	defer d.Close()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	r := d.Probe(context.Background(), detector.Target{Key: "c/s/evil", Host: host, Port: port, User: "postgres"})
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if r.OK {
		t.Fatalf("probe of a hostile server succeeded: %+v", r)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("the probe allocated %d MiB for an announced 1 GiB message", grew>>20)
	}
	if !strings.Contains(r.Err, "invalid body length") {
		t.Fatalf("error %q does not say the message was too long", r.Err)
	}
	if took > time.Second {
		t.Fatalf("the probe took %v: it waited for the body", took)
	}
}

// TestDetector_SilentServerCostsOneTimeout: a server that never answers
// costs one probe timeout.
func TestDetector_SilentServerCostsOneTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	}()
	a := ln.Addr().(*net.TCPAddr)
	d := detector.New(300*time.Millisecond, time.Now, "")
	defer d.Close()
	start := time.Now()
	r := d.Probe(context.Background(), detector.Target{Key: "c/s/mute", Host: a.IP.String(), Port: a.Port, User: "postgres"})
	if took := time.Since(start); r.OK || r.Refused || took > 2*time.Second {
		t.Fatalf("silent server: %+v after %v", r, took)
	}
}

// TestDetector_InterruptEndsProbesAtOnce: a probe waiting for a server
// that does not answer ends when the detector is interrupted, not at its
// deadline.
func TestDetector_InterruptEndsProbesAtOnce(t *testing.T) {
	asked := make(chan struct{}, 1)
	release := make(chan struct{})
	node, srv, err := fleetsim.ListenPrimary("pg1", func(h fleetsim.Handler) fleetsim.Handler {
		return func(q string, params []string) (fleetsim.Result, error) {
			if q == collector.ProbeQuery() {
				select {
				case asked <- struct{}{}:
				default:
				}
				<-release
			}
			return h(q, params)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	defer close(release) // before the server's Close, which waits for its sessions
	d := detector.New(time.Minute, time.Now, "")
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan detector.Result, 1)
	go func() {
		done <- d.Probe(ctx, detector.Target{Key: "c/s/pg1", Host: node.Host, Port: node.Port, User: "postgres"})
	}()
	select {
	case <-asked:
	case r := <-done:
		t.Fatalf("the probe ended before the server was asked: %+v", r)
	case <-time.After(10 * time.Second):
		t.Fatal("the server was never asked")
	}
	cancel()
	d.Interrupt()
	select {
	case r := <-done:
		if r.OK || r.Refused || !strings.Contains(r.Err, "interrupted") {
			t.Fatalf("interrupted probe: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the probe still waits 10 s after the interrupt")
	}
}

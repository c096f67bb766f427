package providertest

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// ConnGauge is a TCP relay put in front of a fake (the SMTP one, say) that
// measures how many client sessions are open through it at once: Max is the
// high-water mark. Each new connection is held for a while before it is
// relayed, as a slow server would hold it, so that clients that do not limit
// themselves pile up and show in Max.
//
// A session counts from accept until the client sends an SMTP QUIT line or
// closes: a client that frees its slot once QUIT is answered cannot be seen
// twice. (QUIT is only seen on clear connections; over TLS a session counts
// until close.)
type ConnGauge struct {
	ln     net.Listener
	target string
	hold   time.Duration

	mu         sync.Mutex
	open, max  int
	total      int
	done       chan struct{}
	wg         sync.WaitGroup
	closeOnce  sync.Once
	conns      map[net.Conn]struct{}
	acceptDone chan struct{}
}

// NewConnGauge listens on 127.0.0.1 and relays every connection to target
// (host:port) after holding it for hold. It closes through t.Cleanup.
func NewConnGauge(t testing.TB, target string, hold time.Duration) *ConnGauge {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("providertest: gauge listen: %v", err)
	}
	g := &ConnGauge{ln: ln, target: target, hold: hold, done: make(chan struct{}),
		conns: map[net.Conn]struct{}{}, acceptDone: make(chan struct{})}
	go g.accept()
	t.Cleanup(g.close)
	return g
}

// Addr is the gauge's host:port, to give clients instead of the target's.
func (g *ConnGauge) Addr() string { return g.ln.Addr().String() }

// Host is the listening IP.
func (g *ConnGauge) Host() string { return g.ln.Addr().(*net.TCPAddr).IP.String() }

// Port is the listening port.
func (g *ConnGauge) Port() int { return g.ln.Addr().(*net.TCPAddr).Port }

// Max is the largest number of sessions that were open at the same time.
func (g *ConnGauge) Max() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.max
}

// Total counts the connections accepted.
func (g *ConnGauge) Total() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

func (g *ConnGauge) accept() {
	defer close(g.acceptDone)
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		g.open++
		g.total++
		g.max = max(g.max, g.open)
		g.conns[c] = struct{}{}
		g.mu.Unlock()
		g.wg.Add(1)
		go g.relay(c)
	}
}

func (g *ConnGauge) relay(c net.Conn) {
	defer g.wg.Done()
	var once sync.Once
	finish := func() {
		once.Do(func() {
			g.mu.Lock()
			g.open--
			g.mu.Unlock()
		})
	}
	defer func() {
		finish()
		_ = c.Close()
		g.mu.Lock()
		delete(g.conns, c)
		g.mu.Unlock()
	}()

	t := time.NewTimer(g.hold)
	defer t.Stop()
	select {
	case <-t.C:
	case <-g.done:
		return
	}
	s, err := net.Dial("tcp", g.target)
	if err != nil {
		return
	}
	defer func() { _ = s.Close() }()

	serverDone := make(chan struct{})
	go func() {
		defer close(serverDone)
		_, _ = io.Copy(c, s)
		_ = c.Close()
	}()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadBytes('\n')
		if bytes.EqualFold(bytes.TrimSpace(line), []byte("QUIT")) {
			finish()
		}
		if len(line) > 0 {
			if _, werr := s.Write(line); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	finish()
	if tc, ok := s.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	select {
	case <-serverDone:
	case <-g.done:
	}
}

func (g *ConnGauge) close() {
	g.closeOnce.Do(func() {
		close(g.done)
		_ = g.ln.Close()
		<-g.acceptDone
		g.mu.Lock()
		for c := range g.conns {
			_ = c.Close()
		}
		g.mu.Unlock()
		g.wg.Wait()
	})
}

package testenv

import (
	"fmt"
	"net"
	"sync"
)

// Ports handed out in this process are never handed out again: a client
// a finished test left running (a consumer group reader still rejoining,
// a poller still claiming) must not find a later test's broker or Redis
// on its old address, join its consumer group or take its jobs. Seen in
// -count=20 runs as minute-long stalls ("read results (have 0)").
var used = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// listenUnique listens like net.Listen; for port 0 it picks a port never
// used before in this process. An explicit port (a broker restarted on
// its own address) is listened on as asked.
func listenUnique(network, address string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil || port != "0" {
		return net.Listen(network, address)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	var held []net.Listener // ports used before, kept open so the kernel offers others
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for range 200 {
		l, err := net.Listen(network, net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		used.Lock()
		fresh := !used.ports[p]
		used.ports[p] = true
		used.Unlock()
		if fresh {
			return l, nil
		}
		held = append(held, l)
	}
	return nil, fmt.Errorf("no port unused in this process found")
}

// FreePort returns a loopback TCP port that is free now and was never
// returned (nor listened on by listenUnique) before in this process.
func FreePort() (int, error) {
	l, err := listenUnique("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

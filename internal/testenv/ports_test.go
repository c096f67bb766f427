package testenv

import (
	"net"
	"strconv"
	"testing"
)

// No port is handed out twice in a process, even once it is free again.
func TestPortsAreNeverReused(t *testing.T) {
	seen := map[int]bool{}
	for range 300 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	l, err := listenUnique("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	if seen[p] {
		t.Fatalf("listenUnique reused %d", p)
	}
	again, err := listenUnique("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("an explicit port (a broker restarted on its address) was refused: %v", err)
	}
	again.Close()
}

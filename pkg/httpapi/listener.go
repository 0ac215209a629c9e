package httpapi

import (
	"net"
	"net/netip"
	"sync"
)

// Refusal reasons of LimitListener.
const (
	RefusedListener = "listener"
	RefusedSource   = "source"
)

// LimitListener returns a listener that holds at most total connections
// open at once, and at most perSource from one source: an IPv4 address, or
// an IPv6 /64 (one host's usual allocation). A connection over either cap
// is closed as soon as it is accepted, and refused is called with the
// reason, so that one source cannot take the listener's connections (or
// the process's file descriptors) from the others.
func LimitListener(l net.Listener, total, perSource int, refused func(reason string)) net.Listener {
	return &limitListener{Listener: l, total: total, perSource: perSource, refused: refused,
		bySource: map[netip.Addr]int{}}
}

type limitListener struct {
	net.Listener
	total, perSource int
	refused          func(string)

	mu       sync.Mutex
	open     int
	bySource map[netip.Addr]int
}

// Accept returns the next connection within the caps.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := source(c.RemoteAddr())
		l.mu.Lock()
		reason := ""
		switch {
		case l.open >= l.total:
			reason = RefusedListener
		case l.bySource[src] >= l.perSource:
			reason = RefusedSource
		default:
			l.open++
			l.bySource[src]++
		}
		l.mu.Unlock()
		if reason != "" {
			_ = c.Close()
			if l.refused != nil {
				l.refused(reason)
			}
			continue
		}
		return &limitedConn{Conn: c, release: func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.open--
			if l.bySource[src]--; l.bySource[src] <= 0 {
				delete(l.bySource, src)
			}
		}}, nil
	}
}

// Open returns the number of connections open now (for tests and metrics).
func (l *limitListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// source is what the per-source cap counts by.
func source(a net.Addr) netip.Addr {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip := ta.AddrPort().Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Close closes the connection and gives its place back, once.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

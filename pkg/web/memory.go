package web

import (
	"context"
	"sync"
	"time"
)

// MemorySessions keeps sessions in the process's memory: a restart signs
// everyone out, and each process of a deployment has its own (a browser
// must reach the same one). The relay's pages use it; they hold nothing
// that a new sign-in cannot restore.
type MemorySessions struct {
	mu       sync.Mutex
	sessions map[string]Session
}

// SaveSession keeps s, and forgets sessions that have expired.
func (m *MemorySessions) SaveSession(_ context.Context, s Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions == nil {
		m.sessions = map[string]Session{}
	}
	for k, old := range m.sessions {
		if !s.Created.Before(old.Expires) {
			delete(m.sessions, k)
		}
	}
	m.sessions[s.Key] = s
	return nil
}

// Session returns the session with key unless it expired by now.
func (m *MemorySessions) Session(_ context.Context, key string, now time.Time) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[key]
	if !ok || !now.Before(s.Expires) {
		return Session{}, ErrNoSession
	}
	return s, nil
}

// DeleteSession forgets the session with key.
func (m *MemorySessions) DeleteSession(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, key)
	return nil
}

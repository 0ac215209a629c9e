package event

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
)

func sampleDecided() *Event {
	p := NewPseudonyms(bytes.Repeat([]byte{7}, PseudonymKeySize))
	return &Event{Type: Decided, Notice: p.Notice("0d4c2a4e-8a55-5d7e-9b51-3f8f3c2b1a00"),
		Time: time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.FixedZone("CET", 3600)), Actor: "routing",
		Platform: "examplenet", BodySHA256: strings.Repeat("ab", 32), Priority: "urgent",
		Decision: &jurisdiction.Decision{Priority: "urgent", Recipients: []jurisdiction.Recipient{
			{Authority: "at-police", Country: "AT", Grounds: []jurisdiction.Ground{{Basis: "offence", Evidence: "declared"}}},
			{Authority: "de-bka", Country: "DE", Grounds: []jurisdiction.Ground{{Basis: "suspect", Evidence: "declared"}}},
		}}}
}

// Events are canonical (RFC 8785): keys sorted, no spaces, time in UTC,
// the version a string; Decode reads them back.
func TestMessageIsCanonicalAndRoundTrips(t *testing.T) {
	e := sampleDecided()
	m, err := e.Message()
	if err != nil {
		t.Fatal(err)
	}
	s := string(m.Data)
	if !strings.HasPrefix(s, `{"actor":"routing","body_sha256":`) || strings.Contains(s, " ") ||
		!strings.Contains(s, `"time":"2026-11-27T09:00:00.123456789Z"`) || !strings.Contains(s, `"v":"1"`) {
		t.Fatalf("not canonical: %s", s)
	}
	if m.ID != m.Subject || m.Subject != "nr.event."+e.Notice+".decided" {
		t.Fatalf("subject %s id %s", m.Subject, m.ID)
	}
	back, err := Decode(m.Data)
	if err != nil || back.Decision == nil || len(back.Decision.Recipients) != 2 {
		t.Fatalf("decode: %v %+v", err, back)
	}
	if _, err := Decode([]byte(`{"v":"9","type":"accepted"}`)); err == nil {
		t.Fatal("unknown version accepted")
	}
}

func TestPseudonymsAreKeyed(t *testing.T) {
	a := NewPseudonyms(bytes.Repeat([]byte{1}, 32))
	b := NewPseudonyms(bytes.Repeat([]byte{2}, 32))
	id := "0d4c2a4e-8a55-5d7e-9b51-3f8f3c2b1a00"
	if a.Notice(id) != a.Notice(id) || a.Notice(id) == b.Notice(id) || strings.Contains(a.Notice(id), "0d4c") || len(a.Notice(id)) != 32 {
		t.Fatalf("pseudonyms %s %s", a.Notice(id), b.Notice(id))
	}
}

func BenchmarkEventMessage(b *testing.B) {
	e := sampleDecided()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Message(); err != nil {
			b.Fatal(err)
		}
	}
}

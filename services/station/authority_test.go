package station_test

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/relaytest"
	store "github.com/noticerelay/noticerelay/pkg/station"
)

// The relay's inbox answer names the token's authority; a station whose
// database holds another authority's notices stores and acknowledges
// nothing of this one's, and says why.
func TestStationRefusesAnotherAuthoritysToken(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	st, err := store.Open(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetAuthority(context.Background(), store.Authority{ID: "fr-police", Name: "Police nationale"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	e := newEnvWith(t, nil, func(y string) string {
		return regexp.MustCompile(`(?m)^data: .*$`).ReplaceAllString(y, "data: "+data)
	})
	var in struct {
		Authority struct{ ID, Name, Country string } `json:"authority"`
	}
	if resp := e.relay.Do("GET", "/v1/inbox?max=1", "authority:"+authority, nil); resp.Status != 200 || resp.JSON(&in) != nil ||
		in.Authority.ID != authority || in.Authority.Name != authorityName || in.Authority.Country != "DE" {
		t.Fatalf("the inbox answer does not name its authority: %s", resp)
	}
	id := e.relay.Submit("examplenet", relaytest.Notice("OTHER-1", false, "", "DE", ""))
	relaytest.Eventually(t, 20*time.Second, "the refusal recorded", func() bool {
		s, err := e.station.Store().Relay(context.Background())
		return err == nil && strings.Contains(s.LastError, "another authority") && strings.Contains(s.LastError, "fr-police")
	})
	if n := e.stored(t); n != 0 {
		t.Fatalf("%d notices of de-bka stored in fr-police's database", n)
	}
	var status struct {
		Recipients []struct{ Authority, Status string } `json:"recipients"`
	}
	if resp := e.relay.Do("GET", "/v1/notices/"+id, "platform:examplenet", nil); resp.Status != 200 || resp.JSON(&status) != nil {
		t.Fatalf("status: %s", resp)
	}
	for _, r := range status.Recipients {
		if r.Authority == authority && r.Status == "acknowledged" {
			t.Fatal("the station acknowledged a delivery it did not store")
		}
	}
	s, err := e.station.Store().Relay(context.Background())
	if err != nil || s.Authority.ID != "fr-police" {
		t.Fatalf("the database's authority changed: %+v %v", s.Authority, err)
	}
}

package geo_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/noticerelay/noticerelay/pkg/geo"
	"github.com/noticerelay/noticerelay/pkg/geo/geotest"
	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
)

var _ jurisdiction.Locator = (*geo.Snapshot)(nil)

func write(t *testing.T, path string, db geotest.Database, nets ...geotest.Network) {
	t.Helper()
	if err := geotest.Write(path, db, nets...); err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T, path string, o geo.Options) *geo.DB {
	t.Helper()
	db, err := geo.Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func rec(prefix string, m mmdbtype.Map) geotest.Network {
	return geotest.Network{Prefix: prefix, Record: m}
}

func TestLocate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "geo.mmdb")
	yes := mmdbtype.Bool(true)
	write(t, path, geotest.Database{Type: "GeoIP2-Enterprise", BuildEpoch: 1795000000},
		geotest.Country("85.214.0.0/16", "DE"),
		geotest.Country("2a01:4f8::/32", "DE"),
		geotest.Country("91.198.174.0/24", "NL"),
		geotest.Country("2001:67c:1400::/40", "RE"),
		geotest.AnonymousProxy("185.220.100.0/22", "DE"),
		rec("51.15.0.0/16", mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String("FR")}, "traits": mmdbtype.Map{"is_hosting_provider": yes}}),
		rec("2a0b:f4c0::/32", mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String("DE")}, "traits": mmdbtype.Map{"is_tor_exit_node": yes}}),
		rec("62.0.0.0/16", mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String("AT")}, "traits": mmdbtype.Map{"is_anonymous_vpn": mmdbtype.Bool(false)}}),
		// GeoIP2 Anonymous IP: flags at the top level, no country.
		rec("104.16.0.0/13", mmdbtype.Map{"is_anonymous": yes, "is_public_proxy": yes}),
		// ip-location-db: country_code at the top level.
		rec("81.2.0.0/16", mmdbtype.Map{"country_code": mmdbtype.String("PL")}),
		// IPinfo privacy: vpn flag.
		rec("81.3.0.0/16", mmdbtype.Map{"country_code": mmdbtype.String("PL"), "vpn": yes}),
		// Registered country only: not a location.
		rec("5.0.0.0/16", mmdbtype.Map{"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("SE")}}),
		// A record of another shape altogether.
		rec("5.1.0.0/16", mmdbtype.Map{"country": mmdbtype.String("Germany")}),
	)
	db := open(t, path, geo.Options{})
	s := db.Current()
	for _, tc := range []struct {
		addr string
		want jurisdiction.Place
	}{
		{"85.214.132.117", jurisdiction.Place{Country: "DE"}},
		{"::ffff:85.214.132.117", jurisdiction.Place{Country: "DE"}},
		{"2a01:4f8:c17:1::1", jurisdiction.Place{Country: "DE"}},
		{"91.198.174.192", jurisdiction.Place{Country: "NL"}},
		{"2001:67c:1401::5", jurisdiction.Place{Country: "RE"}},
		{"185.220.101.4", jurisdiction.Place{Country: "DE", Anonymous: true}},
		{"51.15.1.1", jurisdiction.Place{Country: "FR", Anonymous: true}},
		{"2a0b:f4c0::1", jurisdiction.Place{Country: "DE", Anonymous: true}},
		{"62.0.1.1", jurisdiction.Place{Country: "AT"}},
		{"104.16.1.1", jurisdiction.Place{Anonymous: true}},
		{"81.2.69.160", jurisdiction.Place{Country: "PL"}},
		{"81.3.1.1", jurisdiction.Place{Country: "PL", Anonymous: true}},
		{"5.0.1.1", jurisdiction.Place{}},
		{"5.1.1.1", jurisdiction.Place{}},
		{"8.8.8.8", jurisdiction.Place{}},
		{"2606:4700::1111", jurisdiction.Place{}},
	} {
		if got := s.Locate(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Locate(%s) = %+v, want %+v", tc.addr, got, tc.want)
		}
	}
	info := s.Database()
	if info.Type != "GeoIP2-Enterprise" || info.BuiltAt != "2026-11-18T11:06:40Z" || len(info.SHA256) != 64 {
		t.Errorf("Database() = %+v", info)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := geo.Open(filepath.Join(dir, "missing.mmdb"), geo.Options{}); err == nil {
		t.Error("missing file opened")
	}
	bad := filepath.Join(dir, "bad.mmdb")
	if err := os.WriteFile(bad, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := geo.Open(bad, geo.Options{}); err == nil || !strings.Contains(err.Error(), "not a usable MaxMind DB") {
		t.Errorf("bad file: %v", err)
	}
}

// A database rewritten in place, or replaced by rename, while lookups run
// concurrently: every lookup answers from one whole version, and the new
// version is in use soon after the change. A broken file leaves the old
// version in use.
func TestReloadWhileInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "geo.mmdb")
	addr := netip.MustParseAddr("85.214.132.117")
	write(t, path, geotest.Database{BuildEpoch: 1000}, geotest.Country("85.214.0.0/16", "DE"))
	var reloads, failures atomic.Int32
	db := open(t, path, geo.Options{CheckEvery: time.Millisecond, OnReload: func(_ jurisdiction.GeoDatabase, err error) {
		if err != nil {
			failures.Add(1)
		} else {
			reloads.Add(1)
		}
	}})

	// Readers check that country and version always agree.
	want := map[string]string{"1970-01-01T00:16:40Z": "DE", "1970-01-01T00:33:20Z": "AT", "1970-01-01T00:50:00Z": "PL"}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				s := db.Current()
				built := s.Database().BuiltAt
				if got := s.Locate(addr).Country; got != want[built] {
					t.Errorf("database built %s placed the address in %q, want %q", built, got, want[built])
					return
				}
			}
		}()
	}
	waitFor := func(built string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for db.Current().Database().BuiltAt != built {
			if time.Now().After(deadline) {
				t.Fatalf("database built %s not loaded; in use: %+v", built, db.Current().Database())
			}
			time.Sleep(2 * time.Millisecond)
		}
	}

	write(t, path, geotest.Database{BuildEpoch: 2000}, geotest.Country("85.214.0.0/16", "AT"))
	waitFor("1970-01-01T00:33:20Z")

	// A broken file: the last good version stays in use.
	if err := os.WriteFile(path, []byte("garbage that is no database"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for failures.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("broken file not reported")
		}
		db.Current()
		time.Sleep(2 * time.Millisecond)
	}
	if got := db.Current().Database().BuiltAt; got != "1970-01-01T00:33:20Z" {
		t.Errorf("after a broken file, database built %s in use", got)
	}

	if err := geotest.Replace(path, geotest.Database{BuildEpoch: 3000}, geotest.Country("85.214.0.0/16", "PL")); err != nil {
		t.Fatal(err)
	}
	waitFor("1970-01-01T00:50:00Z")
	cancel()
	wg.Wait()
	if reloads.Load() != 2 {
		t.Errorf("%d reloads, want 2", reloads.Load())
	}
}

// Without a change, Reload loads nothing.
func TestReloadUnchanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "geo.mmdb")
	write(t, path, geotest.Database{}, geotest.Country("85.214.0.0/16", "DE"))
	db := open(t, path, geo.Options{})
	before := db.Current()
	if changed, err := db.Reload(); changed || err != nil {
		t.Fatalf("Reload() = %v, %v", changed, err)
	}
	if db.Current() != before {
		t.Error("snapshot replaced without a change")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Reload(); err == nil {
		t.Error("missing file not reported")
	}
	if db.Current() != before {
		t.Error("snapshot dropped when the file went missing")
	}
}

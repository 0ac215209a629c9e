// Package geo places IP addresses with a MaxMind-format (.mmdb) database,
// and reloads the database when its file changes, without a restart.
//
// What it reads of a record, so that the common free and commercial
// databases work as they are:
//
//   - the country: "country"."iso_code" (GeoIP2 and GeoLite2 Country and
//     City, DB-IP), else a top-level "country_code" (the CC0 ip-location-db
//     files, IPinfo). "registered_country" (where the network is registered,
//     not where it is used) and "represented_country" are not read.
//   - anonymisers: a true value of any of is_anonymous, is_anonymous_proxy,
//     is_anonymous_vpn, is_public_proxy, is_residential_proxy,
//     is_tor_exit_node, is_hosting_provider, is_satellite_provider, at the
//     top level (GeoIP2 Anonymous IP) or under "traits" (GeoIP2 Country,
//     City and Enterprise), and of the top-level vpn, proxy, tor, relay and
//     hosting flags (IPinfo privacy). An address so flagged is located but
//     marked Anonymous: it does not locate its user.
//
// A database is read into memory (not memory-mapped), so a file rewritten
// in place never changes a database in use: a Snapshot stays valid for as
// long as it is referenced.
package geo

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
	"github.com/noticerelay/noticerelay/pkg/reload"
)

// DefaultCheckEvery is how often, at most, a DB checks its file for a change.
const DefaultCheckEvery = reload.DefaultCheckEvery

// Options tune a DB.
type Options struct {
	// CheckEvery is how often, at most, Current checks whether the file
	// changed (DefaultCheckEvery when 0).
	CheckEvery time.Duration
	// OnReload, if set, is called after every attempt to load a changed
	// file: with the new database, or with the error (the database in use
	// then stays in use, and the same file is not tried again).
	OnReload func(db jurisdiction.GeoDatabase, err error)
}

// DB is a geolocation database file, reloaded when it changes.
type DB struct {
	files *reload.Files[*Snapshot]
}

// Open loads the database at path. It fails if the file cannot be read or
// is not a MaxMind DB.
func Open(path string, o Options) (*DB, error) {
	ro := reload.Options[*Snapshot]{CheckEvery: o.CheckEvery}
	if o.OnReload != nil {
		ro.OnReload = func(s *Snapshot, err error) {
			if err != nil {
				o.OnReload(jurisdiction.GeoDatabase{}, err)
				return
			}
			o.OnReload(s.info, nil)
		}
	}
	f, err := reload.Open([]string{path}, func() (*Snapshot, error) { return load(path) }, ro)
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	return &DB{files: f}, nil
}

// Current returns the database in use. At most once per CheckEvery it
// first checks whether the file changed (another path, size or
// modification time) and, if so, loads it; callers that arrive meanwhile
// get the database in use without waiting.
func (d *DB) Current() *Snapshot { return d.files.Current() }

// Reload checks the file now and loads it if it changed. It reports
// whether a new database is in use.
func (d *DB) Reload() (bool, error) {
	changed, err := d.files.Reload()
	if err != nil {
		return false, fmt.Errorf("geo: %w", err)
	}
	return changed, nil
}

// load reads and opens the database at path.
func load(path string) (*Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%s is not a usable MaxMind DB: %w", path, err)
	}
	sum := sha256.Sum256(data)
	return &Snapshot{r: r, info: jurisdiction.GeoDatabase{
		Type:    r.Metadata.DatabaseType,
		BuiltAt: r.Metadata.BuildTime().UTC().Format(time.RFC3339),
		SHA256:  hex.EncodeToString(sum[:]),
	}}, nil
}

// Snapshot is one loaded version of the database; it never changes. It
// implements jurisdiction.Locator.
type Snapshot struct {
	r    *maxminddb.Reader
	info jurisdiction.GeoDatabase
}

// Database identifies the snapshot: the database type and build time from
// its metadata, and the SHA-256 of the file.
func (s *Snapshot) Database() jurisdiction.GeoDatabase { return s.info }

// anonymityFlags are the booleans that mark an anonymiser, at the top level
// or under "traits" (see the package documentation).
var anonymityFlags = []string{
	"is_anonymous", "is_anonymous_proxy", "is_anonymous_vpn", "is_public_proxy",
	"is_residential_proxy", "is_tor_exit_node", "is_hosting_provider", "is_satellite_provider",
}

// ipinfoFlags are IPinfo privacy detection's booleans, top level only.
var ipinfoFlags = []string{"vpn", "proxy", "tor", "relay", "hosting"}

// Locate returns where addr is. A lookup error (a corrupt record) counts as
// an address the database does not know.
func (s *Snapshot) Locate(addr netip.Addr) jurisdiction.Place {
	var rec map[string]any
	res := s.r.Lookup(addr.Unmap())
	if !res.Found() || res.Decode(&rec) != nil {
		return jurisdiction.Place{}
	}
	var p jurisdiction.Place
	if c, ok := rec["country"].(map[string]any); ok {
		p.Country, _ = c["iso_code"].(string)
	}
	if p.Country == "" {
		p.Country, _ = rec["country_code"].(string)
	}
	traits, _ := rec["traits"].(map[string]any)
	for _, f := range anonymityFlags {
		if b, _ := rec[f].(bool); b {
			p.Anonymous = true
		}
		if b, _ := traits[f].(bool); b {
			p.Anonymous = true
		}
	}
	for _, f := range ipinfoFlags {
		if b, _ := rec[f].(bool); b {
			p.Anonymous = true
		}
	}
	return p
}

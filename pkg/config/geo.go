package config

import (
	"os"
	"time"
)

// DefaultSeenWindow is geo.seen_window when not set.
const DefaultSeenWindow = Duration(30 * 24 * time.Hour)

// Geo configures where IP addresses are placed (docs/jurisdiction.md).
type Geo struct {
	// Database is the path of a MaxMind-format database (GeoLite2 or
	// GeoIP2 Country or City, DB-IP, ip-location-db). The relay reloads it
	// when the file changes. Empty: IP addresses make no Member State
	// concerned.
	Database string `yaml:"database"`
	// SeenWindow is how far an address's seen_at may lie before or after
	// the notice's occurred_at and still count (default 30d).
	SeenWindow Duration `yaml:"seen_window"`
}

// fill sets the default window and checks that the database file is
// there; whether it is a usable database is checked when the relay opens it.
func (g *Geo) fill(p *problems) {
	if g.SeenWindow == 0 {
		g.SeenWindow = DefaultSeenWindow
	}
	if g.Database == "" {
		return
	}
	fi, err := os.Stat(g.Database)
	switch {
	case err != nil:
		p.add("geo.database", "cannot read the geolocation database: %v", err)
	case !fi.Mode().IsRegular():
		p.add("geo.database", "%s is not a file", g.Database)
	}
}

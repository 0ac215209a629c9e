// Package geotest writes small MaxMind-format databases for tests, so that
// no test downloads a real one.
package geotest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Network is one block of addresses and its record.
type Network struct {
	Prefix string // CIDR, IPv4 or IPv6
	Record mmdbtype.Map
}

// Country is a GeoIP2-Country record: {"country": {"iso_code": iso}}.
func Country(prefix, iso string) Network {
	return Network{Prefix: prefix, Record: mmdbtype.Map{
		"country": mmdbtype.Map{"iso_code": mmdbtype.String(iso)},
	}}
}

// AnonymousProxy is a GeoIP2-Country record whose traits flag the block
// as an anonymous proxy: {"country": {...}, "traits": {"is_anonymous_proxy": true}}.
func AnonymousProxy(prefix, iso string) Network {
	n := Country(prefix, iso)
	n.Record["traits"] = mmdbtype.Map{"is_anonymous_proxy": mmdbtype.Bool(true)}
	return n
}

// Database says what the metadata of a written database holds.
type Database struct {
	Type       string // default "GeoLite2-Country"
	BuildEpoch int64  // Unix seconds; default 1 (never the time of writing, so that tests are deterministic)
}

// Write writes a database with networks to path, replacing the file in
// place (truncate and write, as a careless operator would) so that a reader
// may see it half-written.
func Write(path string, db Database, networks ...Network) error {
	data, err := Build(db, networks...)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// Replace writes a database next to path and renames it over path, the
// way a database updater does.
func Replace(path string, db Database, networks ...Network) error {
	data, err := Build(db, networks...)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".geotest-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Build returns the bytes of a database with networks.
func Build(db Database, networks ...Network) ([]byte, error) {
	if db.Type == "" {
		db.Type = "GeoLite2-Country"
	}
	if db.BuildEpoch == 0 {
		db.BuildEpoch = 1
	}
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: db.Type,
		BuildEpoch:   db.BuildEpoch,
		// Tests put countries on special ranges too, to show that those
		// never count whatever the database says.
		IncludeReservedNetworks: true,
		Description:             map[string]string{"en": "noticerelay test database"},
		Languages:               []string{"en"},
	})
	if err != nil {
		return nil, fmt.Errorf("geotest: %w", err)
	}
	for _, n := range networks {
		_, ipnet, err := net.ParseCIDR(n.Prefix)
		if err != nil {
			return nil, fmt.Errorf("geotest: %w", err)
		}
		if err := tree.Insert(ipnet, n.Record); err != nil {
			return nil, fmt.Errorf("geotest: inserting %s: %w", n.Prefix, err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("geotest: %w", err)
	}
	return buf.Bytes(), nil
}

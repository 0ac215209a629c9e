package station

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/web"
)

// Config is the station's configuration file (docs/station.md).
type Config struct {
	// Authority, when set, is the name every page shows for the
	// authority the station receives for; by default the pages show the
	// name the relay gives for the station's token.
	Authority string `yaml:"authority"`
	Relay     struct {
		URL      string `yaml:"url"`
		TokenEnv string `yaml:"token_env"`
		// CA, when set, is a PEM file of the only certificates trusted for
		// the relay (a private CA, or the relay's self-signed certificate).
		CA string `yaml:"ca"`
	} `yaml:"relay"`
	// Identity is the age identity file that opens sealed deliveries.
	Identity string `yaml:"identity"`
	// Data is the directory of the station's database.
	Data string `yaml:"data"`
	HTTP struct {
		Listen string     `yaml:"listen"`
		TLS    config.TLS `yaml:"tls"`
	} `yaml:"http"`
	Users []User `yaml:"users"`

	// Filled in by LoadConfig.
	token      string
	identities []age.Identity
	relayTLS   *tls.Config
}

// User is an analyst or a lead who may sign in.
type User struct {
	ID       string `yaml:"id"`
	Name     string `yaml:"name"`
	Password string `yaml:"password"`
	Role     string `yaml:"role"`
}

// Roles: an analyst reads, triages and answers notices; a lead also reads
// the access log and manages the users (suspends, reinstates, signs out).
const (
	RoleAnalyst = "analyst"
	RoleLead    = "lead"
)

var userID = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// LoadConfig reads and checks the station's configuration file; every
// problem is reported, each naming its field. It reads the relay token
// from the environment and the age identity from its file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &config.Error{Problems: []string{fmt.Sprintf("reading %s: %v", path, err)}}
	}
	return ParseConfig(data)
}

// ParseConfig checks a configuration given as YAML.
func ParseConfig(data []byte) (*Config, error) {
	c := &Config{}
	p := config.DecodeStrict(data, c)
	add := func(field, format string, args ...any) {
		for _, q := range p {
			if strings.HasPrefix(q, field+": ") {
				return
			}
		}
		p = append(p, field+": "+fmt.Sprintf(format, args...))
	}
	c.Authority = strings.TrimSpace(c.Authority)
	if len(c.Authority) > 200 {
		add("authority", "is longer than 200 characters")
	}
	switch {
	case c.Relay.URL == "":
		add("relay.url", "is required (the relay's base URL, e.g. https://relay.example)")
	default:
		if _, err := config.SecureURL(c.Relay.URL); err != nil {
			add("relay.url", "%v", err)
		}
	}
	if c.Relay.CA != "" {
		if err := c.UseCA(c.Relay.CA); err != nil {
			add("relay.ca", "%v", err)
		}
	}
	switch {
	case c.Relay.TokenEnv == "":
		add("relay.token_env", "is required: the environment variable that holds the authority's bearer token")
	case os.Getenv(c.Relay.TokenEnv) == "":
		add("relay.token_env", "the environment variable %s is not set or empty", c.Relay.TokenEnv)
	default:
		c.token = strings.TrimSpace(os.Getenv(c.Relay.TokenEnv))
	}
	if c.Identity != "" {
		if ids, err := readIdentity(c.Identity); err != nil {
			add("identity", "%v", err)
		} else {
			c.identities = ids
		}
	}
	if c.Data == "" {
		add("data", "is required: the directory of the station's database")
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:9090"
	}
	if _, port, err := net.SplitHostPort(c.HTTP.Listen); err != nil || port == "" {
		add("http.listen", "%q is not host:port", c.HTTP.Listen)
	}
	t := c.HTTP.TLS
	switch {
	case !t.Enabled():
	case t.CertFile == "":
		add("http.tls.cert_file", "is required with http.tls.key_file")
	case t.KeyFile == "":
		add("http.tls.key_file", "is required with http.tls.cert_file")
	default:
		// Checked now; served through reload.ListenerTLS, which reads
		// the pair again whenever it changes.
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			add("http.tls.cert_file", "with http.tls.key_file: %v", err)
		}
	}
	if len(c.Users) == 0 {
		add("users", "at least one user is required")
	}
	seen, leads := map[string]bool{}, 0
	for i, u := range c.Users {
		f := fmt.Sprintf("users[%d]", i)
		switch {
		case !userID.MatchString(u.ID):
			add(f+".id", "must be 1 to 64 of a-z 0-9 . _ - (starting with a letter or digit), not %q", u.ID)
		case seen[u.ID]:
			add(f+".id", "%q is used twice", u.ID)
		}
		seen[u.ID] = true
		if strings.TrimSpace(u.Name) == "" {
			add(f+".name", "is required")
		}
		if err := web.CheckPasswordHash(u.Password); err != nil {
			add(f+".password", "%v", err)
		}
		switch u.Role {
		case RoleLead:
			leads++
		case RoleAnalyst:
		default:
			add(f+".role", "must be analyst or lead, not %q", u.Role)
		}
	}
	if len(c.Users) > 0 && leads == 0 {
		add("users", "at least one user must have role lead (a lead reads the access log)")
	}
	if len(p) > 0 {
		return nil, &config.Error{Problems: p}
	}
	return c, nil
}

// readIdentity reads an age identity file that only its owner may read.
func readIdentity(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ids, nil
}

// TLS reports whether the station serves HTTPS.
func (c *Config) TLS() bool { return c.HTTP.TLS.Enabled() }

// UseCA makes the station trust only the PEM certificates in file for the
// relay (relay.ca, or the command's --ca).
func (c *Config) UseCA(file string) error {
	t, err := config.CATLS(file)
	if err != nil {
		return err
	}
	c.Relay.CA, c.relayTLS = file, t
	return nil
}

// relayClient is the station's HTTP client of the relay: it trusts
// relay.ca when set, and follows no redirect (the relay's API answers
// none, and following one could carry the token elsewhere).
func (c *Config) relayClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = c.relayTLS
	return &http.Client{Timeout: 60 * time.Second, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return errors.New("the relay answered with a redirect, which is not followed")
	}}
}

func (c *Config) accounts() map[string]web.Account {
	out := map[string]web.Account{}
	for _, u := range c.Users {
		out[u.ID] = web.Account{ID: u.ID, Name: u.Name, Role: u.Role, PasswordHash: u.Password}
	}
	return out
}

package routing

import (
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/country"
	"github.com/noticerelay/noticerelay/pkg/geo"
	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/phone"
)

// Router decides recipients the way the running relay does: the routing
// service and `noticerelay explain` both decide through it.
type Router struct {
	rules     jurisdiction.Rules
	platforms map[string]jurisdiction.Platform
	// geo is the geolocation database, reloaded when its file changes;
	// nil when none is configured.
	geo *geo.DB
	// countries is each configured authority's country, by id;
	// escalation its escalation target, for those that have one.
	countries, escalation map[string]string
}

// NewRouter builds the router of a configuration. It opens the geolocation
// database, if one is configured, and logs its reloads to log.
func NewRouter(c *config.Config, log *zap.Logger) (*Router, error) {
	if log == nil {
		log = zap.NewNop()
	}
	states, _ := country.MemberStates(c.MemberStates)
	r := &Router{
		rules: jurisdiction.Rules{MemberStates: states, Authorities: map[string]string{},
			PhoneRegion: phone.Region, SeenWindow: time.Duration(c.Geo.SeenWindow)},
		platforms: map[string]jurisdiction.Platform{},
		countries: map[string]string{}, escalation: map[string]string{},
	}
	for _, a := range c.Authorities {
		r.countries[a.ID] = a.Country
		if a.Escalation != "" {
			r.escalation[a.ID] = a.Escalation
		}
		if a.Primary() {
			r.rules.Authorities[a.Country] = a.ID
		}
		for _, rl := range a.Rules {
			r.rules.Routes = append(r.rules.Routes, jurisdiction.Route{Name: rl.Name, Authority: a.ID, Country: a.Country,
				Categories: rl.When.Categories, Priority: notice.Priority(rl.When.Priority), InsteadOf: rl.InsteadOf, CopyOf: rl.CopyOf})
		}
	}
	for _, p := range c.Platforms {
		r.platforms[p.ID] = jurisdiction.Platform{
			Establishment:       p.Establishment,
			LegalRepresentative: p.LegalRepresentative,
			Fallback:            p.Fallback,
		}
	}
	if c.Geo.Database != "" {
		db, err := geo.Open(c.Geo.Database, geo.Options{OnReload: func(d jurisdiction.GeoDatabase, err error) {
			if err != nil {
				log.Error("geolocation database not reloaded; the previous one stays in use",
					zap.String("path", c.Geo.Database), zap.Error(err))
				return
			}
			log.Info("geolocation database reloaded", zap.String("path", c.Geo.Database),
				zap.String("type", d.Type), zap.String("built_at", d.BuiltAt), zap.String("sha256", d.SHA256))
		}})
		if err != nil {
			return nil, fmt.Errorf("geo.database: %w", err)
		}
		r.geo = db
		d := db.Current().Database()
		log.Info("geolocation database loaded", zap.String("path", c.Geo.Database),
			zap.String("type", d.Type), zap.String("built_at", d.BuiltAt), zap.String("sha256", d.SHA256))
	}
	return r, nil
}

// Decide returns the decision for a notice of platform. Every IP address
// of one decision is looked up in one version of the database, the version
// the decision names.
func (r *Router) Decide(platform string, n *notice.Notice) jurisdiction.Decision {
	rules := r.rules
	if r.geo != nil {
		rules.Locator = r.geo.Current()
	}
	return jurisdiction.Decide(rules, r.platforms[platform], n)
}

// WithEscalated returns d with every authority of escalated that received
// the notice by escalation added as a recipient (an urgent delivery left
// unacknowledged was copied to it: services/escalation), once, after the
// recipients of the decision. A follow-up of the notice goes to them too
// (contract section 9: every recipient of the earlier notice). An authority
// no longer configured is left out: nothing can be delivered to it. d is
// not changed.
func (r *Router) WithEscalated(d jurisdiction.Decision, escalated ...string) jurisdiction.Decision {
	d.Recipients = slices.Clone(d.Recipients)
	for _, id := range escalated {
		cc, ok := r.countries[id]
		if !ok || slices.ContainsFunc(d.Recipients, func(x jurisdiction.Recipient) bool { return x.Authority == id }) {
			continue
		}
		d.Recipients = append(d.Recipients, jurisdiction.Recipient{Authority: id, Country: cc})
	}
	return d
}

// EscalationTargets returns the authorities the configuration names as
// escalation targets of d's recipients, each once, in the order of the
// recipients: those that receive the notice too if it is urgent and a
// recipient leaves it unacknowledged past deliveries.urgent_deadline.
// None for a normal notice: only urgent deliveries are escalated.
func (r *Router) EscalationTargets(d jurisdiction.Decision) []string {
	var out []string
	if d.Priority != notice.Urgent {
		return nil
	}
	for _, rc := range d.Recipients {
		if t, ok := r.escalation[rc.Authority]; ok && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

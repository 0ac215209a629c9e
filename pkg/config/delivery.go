package config

import (
	"fmt"
	"os"
	"time"

	"filippo.io/age"
)

// Delivery modes of an authority.
const (
	// ModeInbox: the authority pulls (HTTP inbox or NATS); the default.
	ModeInbox = "inbox"
	// ModeWebhook: the relay pushes each delivery to the authority's URL.
	ModeWebhook = "webhook"
	// ModeNATS: the authority consumes its queue from NATS directly; every
	// ack it sends there is recorded as its receipt.
	ModeNATS = "nats"
)

// Delivery says how an authority receives its deliveries.
type Delivery struct {
	// Mode is inbox (default), nats or webhook.
	Mode string `yaml:"mode"`
	// URL receives the POSTs of a webhook authority.
	URL string `yaml:"url"`
	// SecretEnv names the environment variable holding the HMAC key the
	// relay signs webhook requests with (never the key itself: the
	// configuration file is not a secret store).
	SecretEnv string `yaml:"secret_env"`
}

// Notify is where a platform receives the messages authorities send it:
// each one POSTed to URL, signed like an authority webhook with the secret
// in the environment variable SecretEnv.
type Notify struct {
	URL       string `yaml:"url"`
	SecretEnv string `yaml:"secret_env"`
}

// Webhook reports whether the authority's deliveries are pushed.
func (a *Authority) Webhook() bool { return a.Delivery.Mode == ModeWebhook }

// ConsumesNATS reports whether the authority acknowledges on NATS directly.
func (a *Authority) ConsumesNATS() bool { return a.Delivery.Mode == ModeNATS }

// Deliveries tunes how deliveries travel, whatever the authority's mode.
type Deliveries struct {
	// UrgentDeadline is how long an urgent delivery may stay
	// unacknowledged before it is escalated (default 15 minutes).
	UrgentDeadline Duration `yaml:"urgent_deadline"`
	// PoisonAttempts bounds how often a message that cannot be processed
	// is tried before it moves to the dead-letter stream (default 5).
	PoisonAttempts int `yaml:"poison_attempts"`
	// Webhook tunes push delivery.
	Webhook WebhookSettings `yaml:"webhook"`
}

// WebhookSettings tune push delivery: each POST has Timeout; a failed one
// is retried after Backoff doubling up to MaxBackoff (with jitter), at most
// MaxAttempts times in all, then dead-lettered.
type WebhookSettings struct {
	Timeout     Duration `yaml:"timeout"`
	MaxAttempts int      `yaml:"max_attempts"`
	Backoff     Duration `yaml:"backoff"`
	MaxBackoff  Duration `yaml:"max_backoff"`
}

// fill sets the defaults of the delivery settings.
func (d *Deliveries) fill(p *problems) {
	if d.UrgentDeadline == 0 {
		d.UrgentDeadline = Duration(15 * time.Minute)
	}
	if d.PoisonAttempts == 0 {
		d.PoisonAttempts = 5
	}
	if d.PoisonAttempts < 0 {
		p.add("deliveries.poison_attempts", "must be positive")
	}
	w := &d.Webhook
	if w.Timeout == 0 {
		w.Timeout = Duration(10 * time.Second)
	}
	if w.MaxAttempts == 0 {
		w.MaxAttempts = 12
	}
	if w.MaxAttempts < 0 {
		p.add("deliveries.webhook.max_attempts", "must be positive")
	}
	if w.Backoff == 0 {
		w.Backoff = Duration(time.Second)
	}
	if w.MaxBackoff == 0 {
		w.MaxBackoff = Duration(10 * time.Minute)
	}
	if w.MaxBackoff < w.Backoff {
		p.add("deliveries.webhook.max_backoff", "must not be shorter than deliveries.webhook.backoff")
	}
}

// checkDelivery validates the delivery settings of every authority:
// age_recipient, delivery and escalation.
func checkDelivery(c *Config, p *problems) {
	for i := range c.Authorities {
		a := &c.Authorities[i]
		f := fmt.Sprintf("authorities[%d]", i)
		if a.AgeRecipient != "" {
			if _, err := age.ParseX25519Recipient(a.AgeRecipient); err != nil {
				p.add(f+".age_recipient", "must be an age X25519 recipient (age1...): %v", err)
			}
		}
		switch a.Delivery.Mode {
		case "":
			a.Delivery.Mode = ModeInbox
		case ModeInbox, ModeNATS:
		case ModeWebhook:
			checkPush(p, f+".delivery", "mode webhook", a.Delivery.URL, a.Delivery.SecretEnv)
		default:
			p.add(f+".delivery.mode", "must be inbox, nats or webhook, not %q", a.Delivery.Mode)
		}
		if a.Escalation != "" {
			switch {
			case a.Escalation == a.ID:
				p.add(f+".escalation", "must name another authority, not itself")
			case c.Authority(a.Escalation) == nil:
				p.add(f+".escalation", "no authority has id %q", a.Escalation)
			}
		}
	}
	for i, pl := range c.Platforms {
		if pl.Notify != nil {
			checkPush(p, fmt.Sprintf("platforms[%d].notify", i), "notify", pl.Notify.URL, pl.Notify.SecretEnv)
		}
	}
}

// checkPush validates the URL and secret of a target the relay POSTs to,
// signed: an authority's webhook or a platform's notify.
func checkPush(p *problems, f, what, rawURL, secretEnv string) {
	if rawURL == "" {
		p.add(f+".url", "is required for %s", what)
	} else if _, err := SecureURL(rawURL); err != nil {
		p.add(f+".url", "%v", err)
	}
	switch {
	case secretEnv == "":
		p.add(f+".secret_env", "is required for %s: the environment variable that holds the signing secret", what)
	case len(os.Getenv(secretEnv)) < 16:
		p.add(f+".secret_env", "environment variable %s must hold a secret of at least 16 characters", secretEnv)
	}
}

// StoreKey returns the key that encrypts the NATS store at rest, from
// nats.store_key_env or nats.store_key_file, or "" when neither is set.
func (n *NATS) StoreKey() (string, error) {
	switch {
	case n.StoreKeyEnv != "":
		k := os.Getenv(n.StoreKeyEnv)
		if len(k) < 32 {
			return "", fmt.Errorf("nats.store_key_env: environment variable %s must hold a key of at least 32 characters", n.StoreKeyEnv)
		}
		return k, nil
	case n.StoreKeyFile != "":
		b, err := os.ReadFile(n.StoreKeyFile)
		if err != nil {
			return "", fmt.Errorf("nats.store_key_file: %w", err)
		}
		k := string(trimSpace(b))
		if len(k) < 32 {
			return "", fmt.Errorf("nats.store_key_file: %s must hold a key of at least 32 characters", n.StoreKeyFile)
		}
		return k, nil
	}
	return "", nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

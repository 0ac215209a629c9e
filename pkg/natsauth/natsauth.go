// Package natsauth renders the NATS server configuration of a relay
// deployment with least privilege: one user per authority that reaches
// its own two durable consumers and nothing else, and one user per relay
// service with only the subjects that service uses. deploy/nats/
// noticerelay.conf is its output for the demo authorities.
package natsauth

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/noticerelay/noticerelay/pkg/auditlog"
	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// InboxPrefix is the reply-subject prefix of authority's NATS client
// (nats.CustomInboxPrefix): its user may subscribe only there, so no
// authority can read another's replies.
func InboxPrefix(authority string) string { return "_INBOX_" + authority }

// PasswordVar is the environment variable the server reads user's
// password from.
func PasswordVar(user string) string {
	return "NR_NATS_PASSWORD_" + strings.ToUpper(strings.ReplaceAll(user, "-", "_"))
}

// AuthorityPermissions are exactly the subjects a pull consumer of
// authority's two durable consumers needs.
func AuthorityPermissions(authority string) (publish, subscribe []string) {
	publish = []string{"$JS.API.INFO"}
	for _, p := range delivery.Priorities() {
		c := delivery.ConsumerName(authority, p)
		publish = append(publish,
			"$JS.API.CONSUMER.INFO."+stream.Deliveries+"."+c,
			"$JS.API.CONSUMER.MSG.NEXT."+stream.Deliveries+"."+c,
			"$JS.ACK."+stream.Deliveries+"."+c+".>")
	}
	return publish, []string{InboxPrefix(authority) + ".>"}
}

// consumerAPI is what a service needs to create and drain a durable
// consumer.
func consumerAPI(streamName, consumer string) []string {
	return []string{
		"$JS.API.CONSUMER.CREATE." + streamName + "." + consumer,
		"$JS.API.CONSUMER.CREATE." + streamName + "." + consumer + ".>",
		"$JS.API.CONSUMER.DURABLE.CREATE." + streamName + "." + consumer,
		"$JS.API.CONSUMER.INFO." + streamName + "." + consumer,
		"$JS.API.CONSUMER.MSG.NEXT." + streamName + "." + consumer,
		"$JS.ACK." + streamName + "." + consumer + ".>",
	}
}

func directGet(streams ...string) []string {
	var out []string
	for _, s := range streams {
		out = append(out, "$JS.API.DIRECT.GET."+s, "$JS.API.DIRECT.GET."+s+".>", "$JS.API.STREAM.MSG.GET."+s)
	}
	return out
}

// ServicePermissions returns the publish permissions of each relay
// service (every service may subscribe to _INBOX.> for replies).
func ServicePermissions() map[string][]string {
	// Every process ensures the streams at start.
	var common []string
	common = append(common, "$JS.API.INFO")
	names := []string{"KV_" + stream.StatusBucket, "KV_" + stream.KeysBucket, "KV_" + stream.ReadBucket, "KV_" + stream.PushBucket}
	for _, s := range (stream.Topology{}).Streams() {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	for _, n := range names {
		common = append(common, "$JS.API.STREAM.CREATE."+n, "$JS.API.STREAM.UPDATE."+n, "$JS.API.STREAM.INFO."+n)
	}
	common = append(common, "$KV."+stream.KeysBucket+".>")
	common = append(common, directGet("KV_"+stream.KeysBucket)...)
	dead := stream.DeadFilter
	events, deliveries := stream.EventSubject(">"), stream.DeliveryWildcard
	queues := func(extra ...string) []string {
		out := append([]string{}, extra...)
		// Every authority's consumers: inbox and push serve them all.
		out = append(out, consumerAPI(stream.Deliveries, "*")...)
		return out
	}
	perms := map[string][]string{
		"intake": append([]string{stream.NoticeSubject("*"), stream.WithdrawSubject("*"), stream.EventSubject("*", string(event.Rejected))},
			directGet(stream.Notices, stream.Events)...),
		"routing": append(append(append([]string{events, deliveries, dead},
			consumerAPI(stream.Notices, stream.RoutingConsumer)...), consumerAPI(stream.Messages, stream.RoutingMessagesConsumer)...),
			directGet(stream.Notices, stream.Events)...),
		// Messages stores messages, reads threads, notices, deliveries and
		// events, and records the platform's message_delivered events.
		"messages": append([]string{stream.MessageSubject("*", "*", "*"), events},
			directGet(stream.Messages, stream.Notices, stream.Events, stream.Deliveries)...),
		"status": append(append(append([]string{"$KV." + stream.StatusBucket + ".>", dead},
			consumerAPI(stream.Events, stream.StatusConsumer)...), consumerAPI(stream.Notices, stream.StatusBodiesConsumer)...),
			directGet("KV_"+stream.StatusBucket, stream.Notices)...),
		"inbox": append(queues(events, dead), directGet(stream.Events, stream.Deliveries)...),
		// Push counts the POSTs of each delivery in its bucket.
		"push": append(queues(events, dead, "$KV."+stream.PushBucket+".>"),
			directGet(stream.Events, stream.Deliveries, "KV_"+stream.PushBucket)...),
		"receipts": append(append([]string{events, dead},
			consumerAPI(stream.Receipts, stream.ReceiptsConsumer)...), directGet(stream.Deliveries)...),
		// The audit service reads the log with a consumer of its own per read
		// (named nr-read-…, deleted when the read ends).
		"audit": append([]string{stream.CheckpointSubject,
			"$JS.API.CONSUMER.CREATE." + stream.Events + ".>", "$JS.API.CONSUMER.DELETE." + stream.Events + ".>",
			"$JS.API.CONSUMER.INFO." + stream.Events + ".>", "$JS.API.CONSUMER.MSG.NEXT." + stream.Events + ".>",
			"$JS.ACK." + stream.Events + ".>"},
			directGet(stream.Events, stream.Checkpoints)...),
		// Attachments stores files (and purges the chunks of refused
		// uploads), queues their deliveries and streams them out.
		"attachments": append(append(append([]string{stream.AttachmentSubjects, events, deliveries, dead,
			"$JS.API.STREAM.PURGE." + stream.Attachments},
			consumerAPI(stream.Attachments, stream.AttachmentsConsumer)...), consumerAPI(stream.Events, stream.AttachmentsRecipientsConsumer)...),
			directGet(stream.Attachments, stream.Notices, stream.Events, stream.Deliveries)...),
		"escalation": append(append([]string{events, deliveries, dead},
			append(consumerAPI(stream.Events, stream.EscalationConsumer), consumerAPI(stream.Events, stream.EscalationFollowUpsConsumer)...)...),
			directGet(stream.Events, stream.Notices, stream.Deliveries)...),
	}
	// The portal runs with intake, status, messages and attachments, whose
	// handlers it calls; it follows the status projection, the messages
	// sent to platforms (events) and its read marks with ordered
	// consumers, and writes the read marks.
	var portal []string
	for _, s := range []string{"intake", "status", "messages", "attachments"} {
		for _, p := range perms[s] {
			if !slices.Contains(portal, p) {
				portal = append(portal, p)
			}
		}
	}
	for _, s := range []string{"KV_" + stream.StatusBucket, "KV_" + stream.ReadBucket, stream.Events} {
		portal = append(portal, "$JS.API.CONSUMER.CREATE."+s, "$JS.API.CONSUMER.CREATE."+s+".>",
			"$JS.API.CONSUMER.DELETE."+s+".>", "$JS.API.CONSUMER.INFO."+s+".>", "$JS.FC."+s+".>")
	}
	perms["portal"] = append(append(portal, "$JS.API.CONSUMER.MSG.NEXT."+stream.Events+".>", "$KV."+stream.ReadBucket+".>"),
		directGet("KV_"+stream.ReadBucket)...)
	for k, v := range perms {
		perms[k] = append(append([]string{}, common...), v...)
	}
	return perms
}

// Render returns a nats-server configuration for the authorities given,
// with passwords read from the environment (PasswordVar) and the store
// encrypted at rest with the key in NR_NATS_STORE_KEY.
func Render(authorities []string) string {
	var b strings.Builder
	b.WriteString(`# noticerelay: NATS server configuration with least privilege.
# Generated by "noticerelay deliveries nats-config"; see docs/delivery.md.
# Every password is read from the environment (NR_NATS_PASSWORD_<USER>);
# the store is encrypted at rest with the key in NR_NATS_STORE_KEY.

listen: 127.0.0.1:4222
max_payload: 8MB

jetstream {
  store_dir: "./nats-data"
  sync_interval: always
  cipher: chachapoly
  key: $NR_NATS_STORE_KEY
}

authorization {
  users: [
`)
	perms := ServicePermissions()
	var services []string
	for s := range perms {
		services = append(services, s)
	}
	sort.Strings(services)
	b.WriteString("    # Relay services: one user each, only what that service uses.\n")
	for _, s := range services {
		user := "relay-" + s
		sub := []string{"_INBOX.>"}
		if s == "audit" {
			sub = append(sub, auditlog.RequestSubject) // checkpoints on demand
		}
		writeUser(&b, user, perms[s], sub)
	}
	b.WriteString("    # Authorities: each reaches its own two durable consumers and nothing else.\n")
	for _, a := range authorities {
		pub, sub := AuthorityPermissions(a)
		writeUser(&b, a, pub, sub)
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

func writeUser(b *strings.Builder, user string, pub, sub []string) {
	fmt.Fprintf(b, "    {\n      user: %q\n      password: $%s\n      permissions: {\n", user, PasswordVar(user))
	fmt.Fprintf(b, "        publish: { allow: %s }\n", list(pub))
	fmt.Fprintf(b, "        subscribe: { allow: %s }\n", list(sub))
	b.WriteString("      }\n    }\n")
}

func list(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// Package stream is the relay's JetStream layer: the streams and the
// subjects every service agrees on, the one publish-with-id helper and the
// one consume loop.
package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream and bucket names.
const (
	// Notices holds notice bodies and withdrawal requests: personal data,
	// kept for the configured retention, one message per subject.
	Notices = "NR_NOTICES"
	// Events holds the lifecycle events: no personal data, never deleted,
	// one message per subject so that each event exists at most once.
	Events = "NR_EVENTS"
	// Deliveries holds what each authority receives, one subject per
	// delivery id, consumed by one durable consumer per authority and
	// priority.
	Deliveries = "NR_DELIVERIES"
	// StatusBucket is the key-value bucket of the status projection.
	StatusBucket = "NR_STATUS"
	// KeysBucket holds the pseudonym key, under PseudonymKey, when the
	// configuration names no key file, so that every process of a `serve`
	// deployment agrees on it.
	KeysBucket = "NR_RELAY_KEYS"
	// ReadBucket holds, per platform and notice, the ids of the
	// authorities' messages that a person of the platform has seen in the
	// portal (no personal data; each key expires with retention.notices).
	ReadBucket = "NR_PORTAL_READ"
	// PushBucket counts, per message of NR_DELIVERIES (key: its stream
	// sequence), the webhook POSTs push has made of it, so that a
	// redelivery without a POST (a receipt that could not be read, a
	// stop) spends none of the retry budget; deleted once the delivery is
	// received or dead-lettered (else expiring with retention.notices).
	PushBucket   = "NR_PUSH_POSTS"
	PseudonymKey = "pseudonym"
	// Checkpoints holds the audit log's signed checkpoints, in order, never
	// deleted (see pkg/auditlog).
	Checkpoints = "NR_CHECKPOINTS"
	// Receipts captures the ack advisories of the delivery consumers of
	// authorities that consume from NATS directly (no personal data:
	// stream, consumer and sequence numbers).
	Receipts = "NR_RECEIPTS"
	// ReceiptsSubjects are the ack advisories of the delivery stream.
	ReceiptsSubjects = "$JS.EVENT.METRIC.CONSUMER.ACK." + Deliveries + ".>"
	// CheckpointSubject is the subject of every checkpoint.
	CheckpointSubject = "nr.audit.checkpoint"
	// Messages holds the messages between authorities and platforms
	// (contract section 8): personal data, kept for the configured
	// retention, one message per subject.
	Messages = "NR_MESSAGES"
)

// The durable consumers of the relay's services, by name: each service
// creates its own, and pkg/natsauth grants each only its own.
const (
	RoutingConsumer               = "routing"
	RoutingMessagesConsumer       = "routing-messages"
	StatusConsumer                = "status"
	StatusBodiesConsumer          = "status-bodies"
	EscalationConsumer            = "escalation"
	EscalationFollowUpsConsumer   = "escalation-followups"
	ReceiptsConsumer              = "receipts"
	AttachmentsConsumer           = "attachments"
	AttachmentsRecipientsConsumer = "attachments-recipients"
)

// Subjects.
const (
	noticePrefix   = "nr.notice."
	withdrawPrefix = "nr.withdraw."
	eventPrefix    = "nr.event."
	deliveryPrefix = "nr.delivery."
	messagePrefix  = "nr.message."
)

// NoticeSubject is where the body of notice id is stored.
func NoticeSubject(id string) string { return noticePrefix + id }

// WithdrawSubject is where the withdrawal request of notice id is stored.
func WithdrawSubject(id string) string { return withdrawPrefix + id }

// DeliverySubject is where delivery id for authority is stored.
func DeliverySubject(authority, priority, id string) string {
	return deliveryPrefix + authority + "." + priority + "." + id
}

// RedriveSubject is where dead delivery id goes back into its queue: the
// same delivery id on a subject of its own (each subject holds one
// message), named by the dead letter's sequence, so that redriving one
// dead letter twice is a no-op.
func RedriveSubject(authority, priority, id string, deadSeq uint64) string {
	return DeliverySubject(authority, priority, id+redriveMark+strconv.FormatUint(deadSeq, 10))
}

const redriveMark = "-r"

// ParseDeliverySubject returns the authority, priority and delivery id a
// delivery subject names (a redrive's too); ok is false for any other
// subject.
func ParseDeliverySubject(subject string) (authority, priority, id string, ok bool) {
	rest, ok := strings.CutPrefix(subject, deliveryPrefix)
	parts := strings.Split(rest, ".")
	if !ok || len(parts) != 3 {
		return "", "", "", false
	}
	id, _, _ = strings.Cut(parts[2], redriveMark)
	return parts[0], parts[1], id, true
}

// DeliveryWildcard matches every subject of the delivery stream.
const DeliveryWildcard = deliveryPrefix + ">"

// DeliveryFilter is the subject filter of authority's queue of priority.
func DeliveryFilter(authority, priority string) string {
	return deliveryPrefix + authority + "." + priority + ".*"
}

// MessageSubject is where message id of the thread of (notice, authority)
// is stored.
func MessageSubject(noticeID, authority, id string) string {
	return messagePrefix + noticeID + "." + authority + "." + id
}

// MessageFilter matches every message about notice id, in every thread.
func MessageFilter(noticeID string) string { return messagePrefix + noticeID + ".>" }

// IsMessageSubject reports whether subject is a message's.
func IsMessageSubject(subject string) bool { return strings.HasPrefix(subject, messagePrefix) }

// NotifyPriority is the priority token of a platform's notify queue in
// the delivery stream: `nr.delivery.<platform>.notify.<delivery id>`. No
// authority queue has it, so a platform and an authority of the same id
// never share a queue.
const NotifyPriority = "notify"

// EventSubject is the subject of a lifecycle event; parts name the event
// uniquely (notice id, type, and for per-recipient events the authority and
// delivery kind).
func EventSubject(parts ...string) string {
	s := eventPrefix
	for i, p := range parts {
		if i > 0 {
			s += "."
		}
		s += p
	}
	return s
}

// atomicStreamOf names the stream a subject belongs to when that stream
// takes atomic batches; "" otherwise.
func atomicStreamOf(subject string) string {
	switch {
	case strings.HasPrefix(subject, noticePrefix), strings.HasPrefix(subject, withdrawPrefix):
		return Notices
	case strings.HasPrefix(subject, eventPrefix):
		return Events
	case strings.HasPrefix(subject, deliveryPrefix):
		return Deliveries
	case strings.HasPrefix(subject, statusPrefix):
		return "KV_" + StatusBucket
	}
	return ""
}

// statusPrefix is the subject prefix of the status bucket's keys.
const statusPrefix = "$KV." + StatusBucket + "."

// StatusKeySubject is the subject of key in the status bucket.
func StatusKeySubject(key string) string { return statusPrefix + key }

// MarkerTTL is how long the delete marker of an expired body keeps its
// subject taken.
const MarkerTTL = 100 * 365 * 24 * time.Hour

// MarkerHeader is set on a delete marker the server leaves on a subject.
const MarkerHeader = "Nats-Marker-Reason"

// Topology is the set of streams the relay needs, sized by configuration.
type Topology struct {
	// Replicas of every stream (1 single node, 3 in a cluster).
	Replicas int
	// Retention of notice bodies and deliveries.
	Retention time.Duration
	// NoticeMaxBytes caps the notice stream; 0 is no cap.
	NoticeMaxBytes int64
	// DedupWindow is JetStream's duplicate window for message ids.
	DedupWindow time.Duration
}

// dedup is the duplicate window: short, because every stream that must
// refuse a repeated message does so for good by its subject (one message per
// subject); the window only spares a quick retry its error, and its index
// costs memory per message.
func (t Topology) dedup() time.Duration {
	d := t.DedupWindow
	if d == 0 {
		d = 2 * time.Second
	}
	if t.Retention > 0 && t.Retention < d {
		d = t.Retention // the server wants it within the streams' max age
	}
	return d
}

// unique is the configuration shared by the streams in which every message
// has a subject of its own and a second message on it is refused, for good:
// the relay's lasting idempotency fence. Nothing is deleted or purged but by
// the stream's own limits.
func (t Topology) unique(name, description string, subjects []string, maxMsgSize int32) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:                 name,
		Description:          description,
		Subjects:             subjects,
		Retention:            jetstream.LimitsPolicy,
		MaxMsgsPerSubject:    1,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		MaxMsgSize:           maxMsgSize,
		Storage:              jetstream.FileStorage,
		Replicas:             t.Replicas,
		Duplicates:           t.dedup(),
		AllowDirect:          true,
		AllowAtomicPublish:   true,
		DenyDelete:           true,
		DenyPurge:            true,
	}
}

// Streams returns the stream configurations.
func (t Topology) Streams() []jetstream.StreamConfig {
	notices := t.unique(Notices, "notice bodies and withdrawal requests (personal data, expire by message TTL; a marker stays)",
		[]string{noticePrefix + "*", withdrawPrefix + "*"}, 4<<20)
	// A body expires by its message TTL and leaves a delete marker on its
	// subject for a century: the subject stays taken, so a resubmission of
	// (platform, reference) is refused however late, with no second record
	// to write. The server requires roll-ups allowed (and purges not denied)
	// for markers; no relay user may send either.
	notices.AllowMsgTTL = true
	notices.SubjectDeleteMarkerTTL = MarkerTTL
	notices.AllowRollup, notices.DenyPurge = true, false
	notices.MaxBytes = t.NoticeMaxBytes
	if notices.MaxBytes == 0 {
		notices.MaxBytes = -1
	}
	events := t.unique(Events, "lifecycle events (no personal data, never deleted)", []string{eventPrefix + ">"}, 1<<20)
	deliveries := t.unique(Deliveries, "per-authority delivery queues (personal data, retention-limited)",
		[]string{deliveryPrefix + "*.*.*"}, 4<<20)
	deliveries.MaxAge = t.Retention
	messages := t.unique(Messages, "messages between authorities and platforms (personal data, retention-limited)",
		[]string{messagePrefix + "*.*.*"}, 64<<10)
	messages.MaxAge = t.Retention
	dedup := t.dedup()
	return []jetstream.StreamConfig{notices, events, deliveries, messages, t.attachments(), {
		Name:        Checkpoints,
		Description: "signed checkpoints of the audit log (no personal data, never deleted)",
		Subjects:    []string{CheckpointSubject},
		Retention:   jetstream.LimitsPolicy,
		MaxMsgSize:  64 << 10,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		Duplicates:  dedup,
		AllowDirect: true,
		DenyDelete:  true,
		DenyPurge:   true,
	}, t.deadLetters(), {
		Name:        Receipts,
		Description: "ack advisories of authorities that consume from NATS directly, until recorded as receipts",
		Subjects:    []string{ReceiptsSubjects},
		Retention:   jetstream.WorkQueuePolicy,
		MaxAge:      t.Retention,
		MaxMsgSize:  64 << 10,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		Duplicates:  dedup,
	}}
}

// Ensure creates or updates every stream and bucket; it is idempotent and
// every process runs it at start.
//
// On a new cluster, the processes of one deployment start together, and a
// JetStream API request about a stream that another process is creating
// can go unanswered (nats-server 2.15.3: an update, or an info, before the
// stream's group has a leader). So every step is retried with a short
// deadline of its own until ctx ends, and a stream is created first and
// updated only when it exists (CreateOrUpdateStream sends the update
// first); concurrent creates of the same stream both succeed.
func Ensure(ctx context.Context, js jetstream.JetStream, t Topology) error {
	for _, cfg := range t.Streams() {
		err := retry(ctx, func(ctx context.Context) error {
			_, err := js.CreateStream(ctx, cfg)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				_, err = js.UpdateStream(ctx, cfg)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("creating stream %s: %w", cfg.Name, err)
		}
	}
	kvc := jetstream.KeyValueConfig{
		Bucket:      StatusBucket,
		Description: "status projection of each notice, built from the lifecycle events",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
	}
	err := retry(ctx, func(ctx context.Context) error {
		_, err := js.CreateKeyValue(ctx, kvc)
		if errors.Is(err, jetstream.ErrBucketExists) {
			_, err = js.UpdateKeyValue(ctx, kvc)
		}
		if err != nil {
			return fmt.Errorf("creating bucket %s: %w", StatusBucket, err)
		}
		// The bucket's stream takes atomic batches too, for the
		// projection's group commits, and has the same short duplicate
		// window.
		kvs, err := js.Stream(ctx, "KV_"+StatusBucket)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", StatusBucket, err)
		}
		if cfg := kvs.CachedInfo().Config; !cfg.AllowAtomicPublish || cfg.Duplicates != t.dedup() {
			cfg.AllowAtomicPublish, cfg.Duplicates = true, t.dedup()
			if _, err := js.UpdateStream(ctx, cfg); err != nil {
				return fmt.Errorf("bucket %s: allowing atomic batches: %w", StatusBucket, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	read := jetstream.KeyValueConfig{
		Bucket:       ReadBucket,
		Description:  "the portal's read marks: which authorities' messages a platform has seen",
		History:      1,
		TTL:          t.Retention,
		MaxValueSize: 256 << 10,
		Storage:      jetstream.FileStorage,
		Replicas:     t.Replicas,
	}
	posts := jetstream.KeyValueConfig{
		Bucket:       PushBucket,
		Description:  "webhook POSTs made per delivery message, for push's retry budget",
		History:      1,
		TTL:          t.Retention,
		MaxValueSize: 1 << 10,
		Storage:      jetstream.FileStorage,
		Replicas:     t.Replicas,
	}
	for _, kvc := range []jetstream.KeyValueConfig{read, posts} {
		err := retry(ctx, func(ctx context.Context) error {
			_, err := js.CreateKeyValue(ctx, kvc)
			if errors.Is(err, jetstream.ErrBucketExists) {
				_, err = js.UpdateKeyValue(ctx, kvc)
			}
			if err != nil {
				return fmt.Errorf("creating bucket %s: %w", kvc.Bucket, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ensureAttempt is how long one step of Ensure waits for an answer before
// it asks again.
const ensureAttempt = 5 * time.Second

// retry runs op until it succeeds, fails otherwise than by a timeout of its
// own attempt or a cluster that is still forming, or ctx ends.
func retry(ctx context.Context, op func(context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, ensureAttempt)
		err := op(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !forming(err) {
			return err
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			select { // an answer came: ask again a little later, not at once
			case <-ctx.Done():
				return err
			case <-time.After(ensureAgain):
			}
		}
	}
}

// ensureAgain is how long Ensure waits before it asks a cluster that is
// still forming again.
const ensureAgain = 250 * time.Millisecond

// JetStream API error codes of a cluster that is still forming (names as in
// nats-server's errors.json; nats.go has no constants for them).
const (
	jsClusterNoPeers      jetstream.ErrorCode = 10005 // JSClusterNoPeersErr: a peer not yet known to be online
	jsClusterNotAvailable jetstream.ErrorCode = 10008 // JSClusterNotAvailErr: no meta leader yet
)

// forming says whether err is what a cluster answers while its nodes are
// still starting or meeting each other: a step that fails so is asked
// again until Ensure's deadline, instead of failing the process's start.
func forming(err error) bool {
	var api *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse):
		return true
	case errors.As(err, &api):
		return api.ErrorCode == jsClusterNoPeers || api.ErrorCode == jsClusterNotAvailable
	}
	return false
}

// Package audit is the audit service: it signs checkpoints of the
// tamper-evident log (pkg/auditlog) every few seconds while the log grows and
// on request (NATS subject nr.audit.checkpoint.request), and serves
// GET /v1/audit/checkpoint (public), GET /v1/audit/proof?notice=ID
// (auditors) and the auditors' report page under /ui/audit (page.go).
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"golang.org/x/mod/sumdb/note"

	"github.com/noticerelay/noticerelay/pkg/auditlog"
	"github.com/noticerelay/noticerelay/pkg/auth"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/health"
	"github.com/noticerelay/noticerelay/pkg/httpapi"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Name is the service's name in `serve --services`.
const Name = "audit"

// Interval is how often the service checks whether the log has grown and,
// if so, publishes a checkpoint.
const Interval = 2 * time.Second

// followBudget bounds one round of following the log; the next round
// goes on from where it stopped.
const followBudget = 10 * time.Second

// requestTimeout bounds the work of one request.
const requestTimeout = 30 * time.Second

// Service is the audit service.
type Service struct {
	env      *module.Env
	cp       *auditlog.Checkpointer // nil without a signing key
	verifier note.Verifier          // nil without any audit key
	index    index
	wg       sync.WaitGroup
}

// New returns the audit service.
func New(env *module.Env) *Service { return &Service{env: env} }

// Start resumes the checkpointer (when a signing key is configured), starts
// following the log and registers the routes.
func (s *Service) Start(ctx context.Context) error {
	a := s.env.Config.Audit
	if a.VerifierKey != "" {
		v, err := auditlog.NewVerifier(a.VerifierKey)
		if err != nil {
			return fmt.Errorf("audit: audit.verifier_key: %w", err)
		}
		s.verifier = v
	}
	if a.SigningKey == "" {
		s.env.Log.Warn("audit: audit.signing_key is not configured: this process publishes no checkpoints " +
			"(make a key with `noticerelay audit keygen`)")
	} else {
		skey, err := os.ReadFile(a.SigningKey)
		if err != nil {
			return fmt.Errorf("audit: audit.signing_key: %w", err)
		}
		if s.cp, err = auditlog.NewCheckpointer(s.env.JS, string(skey), s.env.Log); err != nil {
			return fmt.Errorf("audit: audit.signing_key: %w", err)
		}
		if s.verifier == nil {
			vkey, err := auditlog.VerifierKey(string(skey))
			if err == nil {
				s.verifier, err = auditlog.NewVerifier(vkey)
			}
			if err != nil {
				return fmt.Errorf("audit: audit.signing_key: %w", err)
			}
		}
		if err := s.cp.Resume(ctx); err != nil {
			return fmt.Errorf("audit: resuming checkpoints: %w", err)
		}
		sub, err := s.env.NC.QueueSubscribe(auditlog.RequestSubject, Name, s.onRequest)
		if err != nil {
			return fmt.Errorf("audit: subscribing to %s: %w", auditlog.RequestSubject, err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.cp.Run(ctx, Interval)
			_ = sub.Drain()
		}()
	}
	s.index.tree = auditlog.NewTree()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.follow(ctx)
	}()
	s.env.Mux.HandleFunc("GET /v1/audit/checkpoint", s.checkpoint)
	s.env.Mux.HandleFunc("GET /v1/audit/proof", s.proof)
	if err := s.registerPages(); err != nil {
		return fmt.Errorf("audit: the auditors' page: %w", err)
	}
	return nil
}

// Wait blocks until the service has stopped.
func (s *Service) Wait() { s.wg.Wait() }

// onRequest answers a request for a fresh checkpoint with the signed note
// (or an Nr-Error header).
func (s *Service) onRequest(m *nats.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	reply := nats.NewMsg(m.Reply)
	cp, err := s.cp.Checkpoint(ctx)
	switch {
	case err != nil:
		s.env.Log.Warn("audit: checkpoint on request", zap.Error(err))
		reply.Header.Set("Nr-Error", err.Error())
	case cp == nil:
		reply.Header.Set("Nr-Error", "the log is empty")
	default:
		reply.Data = cp.Note
	}
	_ = m.RespondMsg(reply)
}

// index is the whole tree, kept in memory to answer proofs.
type index struct {
	mu   sync.RWMutex
	tree *auditlog.Tree
}

// catchUp appends the leaves stored since the last call.
func (s *Service) catchUp(ctx context.Context) error {
	s.index.mu.Lock()
	defer s.index.mu.Unlock()
	t := s.index.tree
	_, err := auditlog.ReadLeaves(ctx, s.env.JS, t.Size(), 0, func(_ uint64, data []byte) error {
		t.Append(data)
		return nil
	})
	return err
}

// size is how many leaves the index holds.
func (s *Service) size() uint64 {
	s.index.mu.RLock()
	defer s.index.mu.RUnlock()
	return s.index.tree.Size()
}

// follow keeps the index up to date until ctx is cancelled.
// Each round reads for at most followBudget: a read keeps retrying
// transient errors, and a proof request waits for the index.
func (s *Service) follow(ctx context.Context) {
	auditlog.Rounds(ctx, &health.Streak{Log: s.env.Log, What: "audit: reading the log"}, Interval, followBudget, s.size, s.catchUp)
}

// checkpoint answers GET /v1/audit/checkpoint: the latest signed checkpoint.
func (s *Service) checkpoint(w http.ResponseWriter, r *http.Request) {
	sc, err := auditlog.LatestCheckpoint(r.Context(), s.env.JS)
	if err != nil {
		httpapi.Error(w, s.env.Log, fault.E("audit checkpoint", fault.Unavailable, err))
		return
	}
	if sc == nil {
		httpapi.NotFound(w, "checkpoint")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(sc.Note)
}

var (
	uuidPattern      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	pseudonymPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// ProofAnswer is the answer of GET /v1/audit/proof.
type ProofAnswer struct {
	// Notice is the notice's pseudonym, as the leaves name it.
	Notice     string      `json:"notice"`
	Checkpoint string      `json:"checkpoint"`
	Proofs     []LeafProof `json:"proofs"`
}

// LeafProof is the proof of one leaf of the notice.
type LeafProof struct {
	Index string          `json:"index"`
	Leaf  json.RawMessage `json:"leaf"`
	// TLogProof is the C2SP tlog-proof of the leaf (https://c2sp.org/tlog-proof).
	TLogProof string `json:"tlog_proof"`
}

// proof answers GET /v1/audit/proof?notice=ID: every leaf of the notice with
// its inclusion proof against a signed checkpoint that covers them all.
func (s *Service) proof(w http.ResponseWriter, r *http.Request) {
	_, release, ok := s.env.Admit(w, r, auth.Auditor, nil)
	if !ok {
		return
	}
	defer release()
	id := strings.ToLower(r.URL.Query().Get("notice"))
	var pseudonym string
	switch {
	case uuidPattern.MatchString(id):
		pseudonym = s.env.Pseudonyms.Notice(id)
	case pseudonymPattern.MatchString(id):
		pseudonym = id
	case id == "":
		httpapi.BadRequest(w, "the notice parameter is required", httpapi.FieldError{Field: "notice", Message: "is required"})
		return
	default:
		httpapi.NotFound(w, "notice")
		return
	}
	if s.verifier == nil {
		httpapi.WriteProblem(w, httpapi.Problem{Status: http.StatusServiceUnavailable,
			Detail: "the relay has no audit keys configured"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	leaves, err := auditlog.LeavesOf(ctx, s.env.JS, pseudonym)
	if err != nil {
		httpapi.Error(w, s.env.Log, fault.E("audit proof", fault.Unavailable, err))
		return
	}
	if len(leaves) == 0 {
		httpapi.NotFound(w, "notice")
		return
	}
	cp, err := s.covering(ctx, slices.Max(leaves)+1)
	if err != nil {
		httpapi.Error(w, s.env.Log, err)
		return
	}
	if err := s.catchUp(ctx); err != nil {
		httpapi.Error(w, s.env.Log, fault.E("audit proof", fault.Unavailable, err))
		return
	}
	events, err := s.env.Stream(ctx, stream.Events)
	if err != nil {
		httpapi.Error(w, s.env.Log, fault.E("audit proof", fault.Unavailable, err))
		return
	}
	ans := ProofAnswer{Notice: pseudonym, Checkpoint: string(cp.Note)}
	s.index.mu.RLock()
	defer s.index.mu.RUnlock()
	for _, i := range leaves {
		m, err := events.GetMsg(ctx, i+1)
		if err != nil {
			httpapi.Error(w, s.env.Log, fault.E("audit proof", fault.Unavailable, err))
			return
		}
		p, err := auditlog.ProofFile(s.index.tree, i, cp)
		if err != nil {
			httpapi.Error(w, s.env.Log, fault.E("audit proof", fault.Unavailable, err))
			return
		}
		ans.Proofs = append(ans.Proofs, LeafProof{Index: strconv.FormatUint(i, 10), Leaf: m.Data, TLogProof: string(p)})
	}
	httpapi.JSON(w, http.StatusOK, ans)
}

// covering returns a signed checkpoint of at least size leaves: a fresh one
// when this process signs, else the latest stored.
func (s *Service) covering(ctx context.Context, size uint64) (*auditlog.Checkpoint, error) {
	var cp *auditlog.Checkpoint
	if s.cp != nil {
		c, err := s.cp.Checkpoint(ctx)
		if err != nil {
			return nil, fault.E("audit proof", fault.Unavailable, err)
		}
		cp = c
	} else {
		sc, err := auditlog.LatestCheckpoint(ctx, s.env.JS)
		if err != nil {
			return nil, fault.E("audit proof", fault.Unavailable, err)
		}
		if sc != nil {
			if cp, err = auditlog.Open(sc.Note, s.verifier); err != nil {
				return nil, fault.E("audit proof", fault.Internal, fmt.Errorf("latest checkpoint: %w", err))
			}
		}
	}
	if cp == nil || cp.Size < size {
		return nil, fault.Errorf("audit proof", fault.Unavailable, "no signed checkpoint covers leaf %d yet", size-1)
	}
	return cp, nil
}

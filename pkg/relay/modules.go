package relay

import (
	"fmt"
	"slices"
	"strings"

	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/services/attachments"
	"github.com/noticerelay/noticerelay/services/audit"
	"github.com/noticerelay/noticerelay/services/escalation"
	"github.com/noticerelay/noticerelay/services/inbox"
	"github.com/noticerelay/noticerelay/services/intake"
	"github.com/noticerelay/noticerelay/services/messages"
	"github.com/noticerelay/noticerelay/services/portal"
	"github.com/noticerelay/noticerelay/services/push"
	"github.com/noticerelay/noticerelay/services/receipts"
	"github.com/noticerelay/noticerelay/services/routing"
	"github.com/noticerelay/noticerelay/services/status"
)

// moduleDef is one service of the relay and how to build it. Every module
// needs the streams, which the relay ensures before starting any of them.
type moduleDef struct {
	name string
	doc  string
	new  func(*module.Env) module.Service
	// deps are the modules that must run in the same process.
	deps []string
}

// modules lists every service, in start order.
var modules = []moduleDef{
	{status.Name, "status projection and GET /v1/notices/{id}", func(e *module.Env) module.Service { return status.New(e) }, nil},
	{routing.Name, "jurisdiction decisions and delivery queues", func(e *module.Env) module.Service { return routing.New(e) }, nil},
	{inbox.Name, "the authorities' inbox API", func(e *module.Env) module.Service { return inbox.New(e) }, nil},
	{push.Name, "webhook delivery to authorities that asked for it", func(e *module.Env) module.Service { return push.New(e) }, nil},
	{receipts.Name, "receipts for acks sent on NATS directly", func(e *module.Env) module.Service { return receipts.New(e) }, nil},
	{escalation.Name, "escalation of urgent deliveries left unacknowledged", func(e *module.Env) module.Service { return escalation.New(e) }, nil},
	{intake.Name, "the platforms' submission API", func(e *module.Env) module.Service { return intake.New(e) }, nil},
	{messages.Name, "messages between authorities and platforms", func(e *module.Env) module.Service { return messages.New(e) }, nil},
	{attachments.Name, "evidence files: upload, one delivery per recipient, download", func(e *module.Env) module.Service { return attachments.New(e) }, nil},
	{audit.Name, "signed checkpoints of the audit log and its proofs", func(e *module.Env) module.Service { return audit.New(e) }, nil},
	// The portal calls the handlers of intake, status, messages and
	// attachments in-process.
	{portal.Name, "the platforms' web portal under /portal/", func(e *module.Env) module.Service { return portal.New(e) },
		[]string{intake.Name, status.Name, messages.Name, attachments.Name}},
}

// ServiceNames lists the names `serve --services` accepts.
func ServiceNames() []string {
	names := make([]string, len(modules))
	for i, m := range modules {
		names[i] = m.name
	}
	return names
}

// selectModules returns the modules named (all when names is empty) and
// the modules they depend on, in start order.
func selectModules(names []string) ([]moduleDef, error) {
	if len(names) == 0 {
		return modules, nil
	}
	for _, n := range names {
		if !slices.ContainsFunc(modules, func(m moduleDef) bool { return m.name == n }) {
			return nil, fmt.Errorf("unknown service %q; known: %s", n, strings.Join(ServiceNames(), ", "))
		}
	}
	want := slices.Clone(names)
	for _, m := range modules {
		if slices.Contains(names, m.name) {
			want = append(want, m.deps...)
		}
	}
	var out []moduleDef
	for _, m := range modules {
		if slices.Contains(want, m.name) {
			out = append(out, m)
		}
	}
	return out, nil
}

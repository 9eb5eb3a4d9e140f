package config

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// check runs the checks that look across blocks: references, queue use,
// timeouts against leases, and route overlaps.
func (b *builder) check() {
	epNames := sortedNames(b.cfg.Endpoints)
	qNames := sortedNames(b.cfg.Queues)
	for i, rt := range b.cfg.Routes {
		r := b.rawRt[i]
		m := &r.rawMeta
		if m.known("endpoint") {
			b.ref(m, "endpoint", rt.Endpoint, "endpoint", epNames)
		}
		if m.known("queue") {
			b.ref(m, "queue", rt.Queue, "queue", qNames)
		}
		if rt.Mode == ModeSync && rt.OnOverload == OverloadQueue && !m.has("queue") {
			b.errorf(m.at("on_overload"), "Missing queue", "on_overload = \"queue\" turns a request that finds its endpoint saturated into a job, and needs queue = \"<name>\" in route %q%s.", rt.Name, queueHint(qNames))
		} else if rt.Mode == ModeSync && rt.OnOverload == OverloadQueue {
			b.queueUse(m.at("queue"), rt.Queue, fmt.Sprintf("route %q", rt.Name))
			b.leaseCheck(rt, r)
		}
		if rt.Mode == ModeAsync || rt.Mode == ModeAuto {
			if !m.has("queue") {
				b.errorf(m.def(), "Missing queue", "A route with mode = %q turns requests into jobs and needs queue = \"<name>\"%s.", rt.Mode, queueHint(qNames))
				if m.has("mode") { // the line that asks for a queue, too
					b.errorf(m.at("mode"), "Missing queue", "mode = %q needs queue = \"<name>\" in route %q%s.", rt.Mode, rt.Name, queueHint(qNames))
				}
			} else {
				b.queueUse(m.at("queue"), rt.Queue, fmt.Sprintf("route %q", rt.Name))
				b.leaseCheck(rt, r)
			}
		}
		if rt.Timeout == 0 {
			if ep := b.cfg.Endpoints[rt.Endpoint]; ep != nil {
				rt.Timeout = ep.Timeout
			}
		}
	}
	if s := b.subRaw; s != nil {
		m := &s.rawMeta
		if m.known("endpoint") {
			b.ref(m, "endpoint", s.Endpoint, "endpoint", epNames)
		}
		if m.known("queue") && b.ref(m, "queue", s.Queue, "queue", qNames) {
			b.queueUse(m.at("queue"), s.Queue, "submit_api")
			b.submitLeaseCheck(s)
		}
	}
	b.separateWorkerCheck()
	if w := b.root.Worker; w != nil && w.known("queues") {
		for i, q := range w.Queues {
			if !b.refAt(w.elemAt("queues", i), q, named(&w.rawMeta, "queues", q), "queue", qNames) {
				continue
			} else if !b.cfg.Worker.Embedded && b.cfg.Queues[q].Backend == BackendMemory {
				b.errorf(w.elemAt("queues", i), "Memory queue with a separate worker", "Queue %q is in memory, but worker.embedded = false means jobs are consumed by a separate openhqm worker process that cannot see this process's memory. Use a redis, kafka or sqs queue, or set embedded = true.", q)
			}
		}
	}
	b.checkOverlaps()
	b.checkReserved()
	b.checkAdminAccess()
}

// checkAdminAccess warns, at a server block, when introspection and
// control (/-/config, /-/routes, POST /-/reload) are served
// nowhere: without admin_token and admin_listen the main listener does not
// serve them, since anyone who reaches it could read or reload the
// configuration (a mesh proxy in the pod makes every caller look local). A
// configuration without a server block takes every listener default and
// gets no warning; its /-/config answers 404 saying what to set.
func (b *builder) checkAdminAccess() {
	s := b.cfg.Server
	if b.root.Server == nil || s.AdminListen != "" || b.root.Server.known("admin_token") {
		return
	}
	b.warnf(b.root.Server.def(), "Admin pages not served", "Neither server.admin_token nor server.admin_listen is set, so introspection and control (/-/config, /-/routes, POST /-/reload) are not served (probes and /metrics are). Set admin_token = env(\"OPENHQM_ADMIN_TOKEN\") to serve them on the main listener to that bearer, or admin_listen = \"127.0.0.1:9090\" to serve them on a port of their own.")
}

func queueHint(names []string) string {
	if len(names) == 0 {
		return ", but no queue block is defined; add one such as queue \"jobs\" { backend = \"memory\" }"
	}
	return " (defined: " + quoteList(names) + ")"
}

func sortedNames[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ref checks a reference to a named block and reports whether it resolves;
// names are sorted.
func (b *builder) ref(m *rawMeta, attr, name, kind string, names []string) bool {
	return b.refAt(m.valueAt(attr), name, named(m, attr, name), kind, names)
}

// refAt checks a reference written at at; shown is how a diagnostic names it
// (see named).
func (b *builder) refAt(at *hcl.Range, name, shown, kind string, names []string) bool {
	if _, found := slices.BinarySearch(names, name); found {
		return true
	}
	if shown != strconv.Quote(name) { // no suggestion: it would tell the value
		b.errorf(at, "Unknown "+kind, "No %s %s is defined.", kind, shown)
		return false
	}
	if b.sink.full(hcl.DiagError) { // counted, not shown: spare the suggestion
		b.errorf(at, "Unknown "+kind, "No %s named %s is defined.", kind, shown)
		return false
	}
	hint := didYouMean(name, names)
	if hint == "" && len(names) > 0 {
		hint = " Defined: " + quoteList(names) + "."
	} else if len(names) == 0 {
		article := "a"
		if strings.ContainsRune("aeiou", rune(kind[0])) {
			article = "an"
		}
		hint = fmt.Sprintf(" Define it with %s %s %q { ... } block.", article, kind, name)
	}
	b.errorf(at, "Unknown "+kind, "No %s named %s is defined.%s", kind, shown, hint)
	return false
}

// queueUse reports a memory queue written to by serve but consumed by a
// separate worker process.
func (b *builder) queueUse(at *hcl.Range, name, user string) {
	q := b.cfg.Queues[name]
	if q == nil || q.Backend != BackendMemory || b.cfg.Worker.Embedded {
		return
	}
	b.errorf(at, "Memory queue with a separate worker", "%s writes to queue %q, which is in memory, but worker.embedded = false means a separate openhqm worker process consumes jobs and it cannot see this process's memory. Use a redis, kafka or sqs queue, or set worker.embedded = true.", user, name)
}

// separateWorkerCheck reports, at worker.embedded = false, the memory queues
// a separate openhqm worker would consume (every queue unless worker.queues
// names some): that process cannot see them.
func (b *builder) separateWorkerCheck() {
	w := b.root.Worker
	if w == nil || !w.has("embedded") || b.cfg.Worker.Embedded {
		return
	}
	consumed := map[string]bool{}
	for _, q := range b.cfg.Worker.Queues {
		consumed[q] = true
	}
	var mem []string
	for _, name := range sortedNames(b.cfg.Queues) {
		if b.cfg.Queues[name].Backend == BackendMemory && (len(b.cfg.Worker.Queues) == 0 || consumed[name]) {
			mem = append(mem, name)
		}
	}
	if len(mem) > 0 {
		b.errorf(w.at("embedded"), "Memory queue with a separate worker", "worker.embedded = false means a separate openhqm worker process consumes %s, which live in another process's memory and cannot be seen from there. Use a redis, kafka or sqs queue, or set embedded = true.", quoteList(mem))
	}
}

// submitLeaseCheck is leaseCheck for the jobs of submit_api: its endpoint's
// timeout against its queue's lease.
func (b *builder) submitLeaseCheck(s *rawSubmitAPI) {
	q := b.cfg.Queues[s.Queue]
	ep := b.cfg.Endpoints[s.Endpoint]
	if q == nil || ep == nil || ep.Timeout < q.Lease {
		return
	}
	at := s.rawMeta.at("queue")
	re := b.metaOf(b.rawEP[ep.Name])
	if re.has("timeout") {
		at = re.at("timeout")
	}
	lease := b.metaOf(b.rawQ[q.Name]).show("lease", q.Lease)
	b.errorf(at, "Timeout longer than lease", "The timeout of endpoint %q (%s), used by submit_api, is not shorter than the lease of queue %q (%s): a job still running would be redelivered to another worker and run twice. Raise the queue's lease above the timeout%s, or lower the endpoint's timeout below %s.", ep.Name, re.show("timeout", ep.Timeout), q.Name, lease, leaseExample(re, "timeout", ep.Timeout), lease)
}

// leaseCheck reports a route whose requests may outlive its queue's lease: the
// job would be redelivered to another worker while the first still runs it.
// A timeout equal to the lease is as bad: the redelivery races the timeout.
func (b *builder) leaseCheck(rt *Route, r *rawRoute) {
	q := b.cfg.Queues[rt.Queue]
	ep := b.cfg.Endpoints[rt.Endpoint]
	if q == nil {
		return
	}
	lease := b.metaOf(b.rawQ[q.Name]).show("lease", q.Lease)
	timeout, at, from, tm := rt.Timeout, r.at("timeout"), "route timeout", &r.rawMeta
	fix := fmt.Sprintf("lower the route's timeout below %s", lease)
	if timeout == 0 {
		if ep == nil {
			return
		}
		tm = b.metaOf(b.rawEP[ep.Name])
		timeout, from = ep.Timeout, fmt.Sprintf("timeout of endpoint %q", ep.Name)
		fix = fmt.Sprintf("give the route a timeout below %s (or lower the endpoint's)", lease)
		if tm.has("timeout") {
			at = tm.at("timeout")
		} else if rq := b.rawQ[q.Name]; rq != nil && rq.has("lease") {
			at, from = rq.at("lease"), fmt.Sprintf("default timeout of endpoint %q", ep.Name)
		} else {
			at = r.def()
		}
	}
	if timeout >= q.Lease {
		b.errorf(at, "Timeout longer than lease", "The %s (%s) of route %q is not shorter than the lease of queue %q (%s): a job still running would be redelivered to another worker and run twice. Raise the queue's lease above the timeout%s, or %s.", from, tm.show("timeout", timeout), rt.Name, q.Name, lease, leaseExample(tm, "timeout", timeout), fix)
	}
}

// metaOf returns the rawMeta of a raw block, or an empty one when the block
// is absent.
func (b *builder) metaOf(h metaHolder) *rawMeta {
	if m := optMeta(h); m != nil {
		return m
	}
	return &rawMeta{}
}

// optMeta returns the rawMeta of a raw block, or nil when it is absent.
func optMeta(h metaHolder) *rawMeta {
	if h == nil || reflect.ValueOf(h).IsNil() {
		return nil
	}
	return h.meta()
}

// leaseExample suggests a lease for a timeout, unless the timeout came from
// env() or file(): the suggestion would tell it.
func leaseExample(m *rawMeta, attr string, timeout time.Duration) string {
	if m.originOf(attr) != "" {
		return ""
	}
	return fmt.Sprintf(", e.g. lease = %q", leaseFor(timeout))
}

// leaseFor suggests a round lease comfortably above timeout: after the
// request ends the worker still stores the result and acknowledges the job,
// which must happen before the lease runs out.
func leaseFor(timeout time.Duration) string {
	need := timeout + 30*time.Second
	for _, s := range []string{"1m", "2m", "5m", "10m", "15m", "30m", "1h", "2h", "6h", "12h", "24h"} {
		if d, _ := time.ParseDuration(s); d >= need {
			return s
		}
	}
	return fmt.Sprintf("%dh", int(need.Hours())+1)
}

var adminReserved = []string{"/-", "/health", "/metrics"}
var submitReserved = []string{"/api/v1/submit", "/api/v1/status", "/api/v1/response"}

// checkReserved warns about routes whose paths are served by openhqm itself.
func (b *builder) checkReserved() {
	for _, rt := range b.cfg.Routes {
		if b.badRt[rt.Index] {
			continue
		}
		at := b.rawRt[rt.Index].Match.def()
		if b.cfg.Server.AdminListen == "" {
			if p := reservedHit(&rt.Match, adminReserved, true); p != "" {
				b.warnf(at, "Route shadowed by a reserved path", "openhqm serves %s itself ahead of every route because server.admin_listen is empty, so route %q never sees those requests. Move the route, or set server.admin_listen to serve admin paths on another port.", p, rt.Name)
			}
		}
		if b.cfg.SubmitAPI != nil {
			if p := reservedHit(&rt.Match, submitReserved, false); p != "" {
				b.warnf(at, "Route shadowed by a reserved path", "The submit_api block makes openhqm serve %s itself, so route %q never sees those requests. Move the route, or remove submit_api.", p, rt.Name)
			}
		}
	}
}

// reservedHit returns the reserved path a route's path condition falls into,
// or "". Only "/-" reserves its whole subtree besides the exact paths when
// subtree is set; the submit paths reserve /submit exactly and /status/{id},
// /response/{id} one level below.
func reservedHit(m *Match, reserved []string, adminTree bool) string {
	var p string
	switch pathKind(m) {
	case kindExact:
		p = m.Path
	case kindTemplate:
		var lit []string
		for _, s := range m.PathSegments {
			if s.Param != "" {
				lit = append(lit, "x")
			} else {
				lit = append(lit, s.Literal)
			}
		}
		p = "/" + strings.Join(lit, "/")
	case kindPrefix:
		p = strings.TrimSuffix(m.PathPrefix, "/")
	default:
		return ""
	}
	for _, r := range reserved {
		switch {
		case adminTree && r == "/-" && (p == r || strings.HasPrefix(p, "/-/")):
			return "/-/"
		case p == r:
			return r
		case !adminTree && r != "/api/v1/submit" && strings.HasPrefix(p, r+"/"):
			return r + "/{id}"
		}
	}
	return ""
}

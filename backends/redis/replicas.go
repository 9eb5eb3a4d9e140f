package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/openhqm/openhqm/backends"
)

// Replicas is the durability asked of writes (Options.MinReplicas,
// ResultsOptions.MinReplicas): after a write, WAIT until N replicas have
// applied it, at most Timeout. A write that is not confirmed in time answers
// an error wrapping errNotReplicated (and so backends.ErrUnavailable), but it
// was applied on the primary and may survive: for a submit, the job may still
// run although the client was answered 503. Retrying the submit (with the
// same Idempotency-Key) is safe; see the package documentation.
type Replicas struct {
	N       int           // 0: no WAIT
	Timeout time.Duration // default 1s
}

func (r Replicas) withDefaults() Replicas {
	if r.Timeout <= 0 {
		r.Timeout = time.Second
	}
	return r
}

// errNotReplicated: fewer replicas than asked confirmed a write in time.
var errNotReplicated = errors.New("write not confirmed by enough replicas")

// scriptCall is one call of a script; its keys share a hash slot.
type scriptCall struct {
	keys []string
	args []any
}

// runScript runs s once and, when rep.N > 0, WAITs for the replicas on the
// same connection (WAIT counts the writes of the connection it runs on).
// Without WAIT it is exactly Script.Run, the path of earlier releases.
func runScript(ctx context.Context, rdb goredis.UniversalClient, s *goredis.Script, rep Replicas, keys []string, args ...any) *goredis.Cmd {
	if rep.N <= 0 {
		return s.Run(ctx, rdb, keys, args...)
	}
	return runEach(ctx, rdb, s, rep, nil, []scriptCall{{keys, args}})[0]
}

// primaries remembers which primaries of a cluster refused a write lately,
// so that the calls of a batch bound for them fail at once instead of
// holding up the calls bound for the others. The zero value is ready.
type primaries struct {
	refusing sync.Map // addr → unix ns until which calls to it fail at once
}

var errPrimaryRefusing = errors.New("the primary refused a write in the last second")

// admit reports whether calls may go to addr now: yes when it refused
// nothing lately; no while it is marked; and, once the mark expired, yes
// for the one caller that renews the mark first, which probes it while the
// others keep failing at once.
func (p *primaries) admit(addr string, now int64) bool {
	if p == nil {
		return true
	}
	until, ok := p.refusing.Load(addr)
	if !ok {
		return true
	}
	return until.(int64) <= now && p.refusing.CompareAndSwap(addr, until, now+int64(failFor))
}

// answered records the outcome of calls sent to addr.
func (p *primaries) answered(addr string, refused bool) {
	switch {
	case p == nil:
	case refused:
		p.refusing.Store(addr, time.Now().Add(failFor).UnixNano())
	default:
		p.refusing.Delete(addr)
	}
}

// runEach runs s once per call, pipelined, with one WAIT after the calls
// when rep.N > 0. On a cluster the calls are grouped by the primary that
// holds their slot, one pipeline per primary, all at once; with health,
// the calls bound for a primary that refused a write in the last second
// fail at once. A call whose write was not confirmed by enough replicas
// answers errNotReplicated.
func runEach(ctx context.Context, rdb goredis.UniversalClient, s *goredis.Script, rep Replicas, health *primaries, calls []scriptCall) []*goredis.Cmd {
	cmds := make([]*goredis.Cmd, len(calls))
	cc, ok := rdb.(*goredis.ClusterClient)
	if !ok {
		pipeline(ctx, rdb, s, rep, calls, cmds)
		return cmds
	}
	groups := map[*goredis.Client][]int{}
	now := time.Now().UnixNano()
	for i, c := range calls {
		node, err := cc.MasterForKey(ctx, c.keys[0])
		if err == nil && !health.admit(node.Options().Addr, now) {
			err = errPrimaryRefusing
		}
		if err != nil {
			cmds[i] = goredis.NewCmd(ctx)
			cmds[i].SetErr(err)
			continue
		}
		groups[node] = append(groups[node], i)
	}
	var wg sync.WaitGroup
	var reload sync.Once
	for node, idx := range groups {
		wg.Go(func() {
			sub := make([]scriptCall, len(idx))
			for j, i := range idx {
				sub[j] = calls[i]
			}
			out := make([]*goredis.Cmd, len(idx))
			pipeline(ctx, node, s, rep, sub, out)
			failed := false
			for j, i := range idx {
				cmds[i] = out[j]
				err := out[j].Err()
				if err != nil && !errors.Is(err, errNotReplicated) {
					// A moved slot or a dead primary: learn the new layout.
					reload.Do(func() { cc.ReloadState(ctx) })
				}
				failed = failed || (err != nil && errors.Is(classify(err), backends.ErrUnavailable))
			}
			health.answered(node.Options().Addr, failed)
		})
	}
	wg.Wait()
	return cmds
}

// pipeline runs calls and a WAIT on one connection of c, loading the script
// once when the server does not know it (a promoted replica does not).
func pipeline(ctx context.Context, c goredis.Cmdable, s *goredis.Script, rep Replicas, calls []scriptCall, cmds []*goredis.Cmd) {
	for try := 0; ; try++ {
		var wait *goredis.Cmd
		_, _ = c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, call := range calls {
				cmds[i] = s.EvalSha(ctx, p, call.keys, call.args...)
			}
			if rep.N > 0 {
				wait = p.Do(ctx, "WAIT", rep.N, rep.Timeout.Milliseconds())
			}
			return nil
		})
		noScript := false
		for _, cmd := range cmds {
			noScript = noScript || isNoScript(cmd.Err())
		}
		if noScript && try == 0 {
			if err := s.Load(ctx, c).Err(); err == nil {
				continue
			}
		}
		if wait == nil {
			return
		}
		var werr error
		switch got, err := wait.Int64(); {
		case err != nil:
			werr = fmt.Errorf("wait for %d replicas: %w", rep.N, err)
		case got < int64(rep.N):
			werr = fmt.Errorf("%w: %d of %d within %v", errNotReplicated, got, rep.N, rep.Timeout)
		}
		if werr != nil {
			for _, cmd := range cmds {
				if cmd.Err() == nil {
					cmd.SetErr(werr)
				}
			}
		}
		return
	}
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

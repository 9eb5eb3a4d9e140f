package deploy

import (
	"bytes"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// Facts are the settings of an openhqm HCL file that the manifests must agree
// with. They are read from literal attributes only; openhqm itself (`openhqm
// validate`) remains the judge of the whole file. Absent settings take
// openhqm's defaults.
type Facts struct {
	Listen         string        // server.listen, default ":8000"
	AdminListen    string        // server.admin_listen, default ""
	WorkerListen   string        // worker.listen, default ":9090"
	Drain          time.Duration // worker.drain, default 30s
	WorkerEmbedded bool          // worker.embedded, default true
	// Queues by name: the Redis stream and consumer group of redis queues.
	Queues map[string]RedisStream
	// RequiredEnv are the variables read with env(NAME) and no default: serve
	// and worker fail to start without them.
	RequiredEnv []string
	// Canonical says whether the file is already in hclwrite's canonical
	// format (what `openhqm fmt` produces).
	Canonical bool
}

// RedisStream names a Redis Streams queue.
type RedisStream struct {
	Stream string
	Group  string
}

// ReadFacts parses one HCL file.
func ReadFacts(name string, src []byte) (*Facts, error) {
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("parse %s: %w", name, diags)
	}
	facts := &Facts{
		Listen:         ":8000",
		WorkerListen:   ":9090",
		Drain:          30 * time.Second,
		WorkerEmbedded: true,
		Queues:         map[string]RedisStream{},
		Canonical:      bytes.Equal(hclwrite.Format(src), src),
	}
	body := f.Body.(*hclsyntax.Body)
	required := map[string]bool{}
	hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		call, ok := n.(*hclsyntax.FunctionCallExpr)
		if ok && call.Name == "env" && len(call.Args) == 1 {
			if v, err := literalString(call.Args[0]); err == nil {
				required[v] = true
			}
		}
		return nil
	})
	for v := range required {
		facts.RequiredEnv = append(facts.RequiredEnv, v)
	}
	sort.Strings(facts.RequiredEnv)

	for _, b := range body.Blocks {
		var err error
		switch b.Type {
		case "server":
			err = setString(b.Body, "listen", &facts.Listen)
			if err == nil {
				err = setString(b.Body, "admin_listen", &facts.AdminListen)
			}
		case "worker":
			err = setString(b.Body, "listen", &facts.WorkerListen)
			if err == nil {
				err = setBool(b.Body, "embedded", &facts.WorkerEmbedded)
			}
			if err == nil {
				var d string
				if err = setString(b.Body, "drain", &d); err == nil && d != "" {
					facts.Drain, err = time.ParseDuration(d)
				}
			}
		case "queue":
			if len(b.Labels) != 1 {
				return nil, fmt.Errorf("%s: queue block needs one label", name)
			}
			rs := RedisStream{Stream: "openhqm-requests", Group: "openhqm-workers"}
			for _, inner := range b.Body.Blocks {
				if inner.Type == "redis" {
					err = setString(inner.Body, "stream", &rs.Stream)
					if err == nil {
						err = setString(inner.Body, "group", &rs.Group)
					}
				}
			}
			facts.Queues[b.Labels[0]] = rs
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %s block: %w", name, b.Type, err)
		}
	}
	return facts, nil
}

// Port returns the port of a listen address such as ":8000" or "0.0.0.0:8000".
func Port(listen string) (int32, error) {
	_, p, err := net.SplitHostPort(listen)
	if err != nil {
		return 0, fmt.Errorf("listen address %q: %w", listen, err)
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("listen address %q: %w", listen, err)
	}
	return int32(n), nil
}

// AdminPort is the port serving /-/healthz, /-/readyz, /health and /metrics
// for `openhqm serve`.
func (f *Facts) AdminPort() (int32, error) {
	if f.AdminListen != "" {
		return Port(f.AdminListen)
	}
	return Port(f.Listen)
}

func setString(body *hclsyntax.Body, attr string, dst *string) error {
	a, ok := body.Attributes[attr]
	if !ok {
		return nil
	}
	v, err := literalString(a.Expr)
	if err != nil {
		return fmt.Errorf("%s: %w", attr, err)
	}
	*dst = v
	return nil
}

func setBool(body *hclsyntax.Body, attr string, dst *bool) error {
	a, ok := body.Attributes[attr]
	if !ok {
		return nil
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || v.IsNull() || !v.Type().Equals(cty.Bool) {
		return fmt.Errorf("%s: not a literal bool", attr)
	}
	*dst = v.True()
	return nil
}

func literalString(e hclsyntax.Expression) (string, error) {
	v, diags := e.Value(nil)
	if diags.HasErrors() || v.IsNull() || !v.Type().Equals(cty.String) {
		return "", fmt.Errorf("not a literal string")
	}
	return v.AsString(), nil
}

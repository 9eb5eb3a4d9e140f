package router

import (
	"fmt"
	"net/textproto"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2/hclsimple"
	"github.com/itchyny/gojq"
	"github.com/openhqm/openhqm/config"
	"github.com/valyala/fasthttp"
	"golang.org/x/tools/txtar"
)

// The files in testdata/routes each hold a configuration (config.hcl, in the
// configuration language; APP_A, APP_B and APP_C stand for the addresses of
// three real apps) followed by pairs of sections "request N" (raw HTTP; a
// Content-Length is added for a body) and "want N" (lines "status: 200",
// "endpoint: b", "uri: /x" for what the app saw, "header: Name: value" for a
// header the app saw, "body~: text" for a substring of the client's body).
//
// Until config.Parse lands in the committed tree, decodeTestConfig reads the
// subset of the language these files use.
// TODO: parse with config.Parse once it is committed.
func TestRouteFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/routes/*.txtar")
	if len(files) == 0 {
		t.Fatal("no testdata/routes/*.txtar files")
	}
	apps := map[string]string{}
	for _, name := range []string{"a", "b", "c"} {
		apps[name] = startApp(t, func(ctx *fasthttp.RequestCtx) {
			ctx.Response.Header.Set("X-Endpoint", name)
			ctx.Response.Header.Set("X-Seen-Uri", string(ctx.RequestURI()))
			for k, v := range ctx.Request.Header.All() {
				ctx.Response.Header.Set("X-Seen-"+string(k), string(v))
			}
			ctx.SetBodyString("from " + name)
		})
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			sections := map[string]string{}
			for _, f := range ar.Files {
				sections[f.Name] = string(f.Data)
			}
			src := strings.NewReplacer("APP_A", apps["a"], "APP_B", apps["b"], "APP_C", apps["c"]).Replace(sections["config.hcl"])
			p := startProxy(t, decodeTestConfig(t, src), Options{})
			for i := 1; ; i++ {
				raw, ok := sections[fmt.Sprintf("request %d", i)]
				if !ok {
					if i == 1 {
						t.Fatal("no request sections")
					}
					break
				}
				t.Run(fmt.Sprint(i), func(t *testing.T) {
					resp := roundTrip(t, p.addr, rawRequest(raw))
					want := strings.TrimSpace(sections[fmt.Sprintf("want %d", i)])
					var got []string
					for _, line := range strings.Split(want, "\n") {
						key, val, _ := strings.Cut(line, ": ")
						switch key {
						case "status":
							got = append(got, fmt.Sprintf("status: %d", resp.StatusCode()))
						case "endpoint":
							got = append(got, "endpoint: "+string(resp.Header.Peek("X-Endpoint")))
						case "uri":
							got = append(got, "uri: "+string(resp.Header.Peek("X-Seen-Uri")))
						case "header":
							name, _, _ := strings.Cut(val, ": ")
							got = append(got, "header: "+name+": "+string(resp.Header.Peek("X-Seen-"+name)))
						case "body~":
							if strings.Contains(string(resp.Body()), val) {
								got = append(got, line)
							} else {
								got = append(got, "body~: "+string(resp.Body()))
							}
						default:
							t.Fatalf("unknown want line %q", line)
						}
					}
					if diff := cmp.Diff(strings.Split(want, "\n"), got); diff != "" {
						t.Errorf("%s (-want +got):\n%s", strings.SplitN(raw, "\n", 2)[0], diff)
					}
				})
			}
		})
	}
}

func rawRequest(s string) string {
	head, body, _ := strings.Cut(strings.TrimLeft(s, "\n"), "\n\n")
	head = strings.ReplaceAll(strings.TrimRight(head, "\n"), "\n", "\r\n")
	body = strings.TrimRight(body, "\n")
	if body != "" {
		head += fmt.Sprintf("\r\nContent-Length: %d", len(body))
	}
	return head + "\r\n\r\n" + body
}

type testFile struct {
	Endpoints []struct {
		Name    string            `hcl:"name,label"`
		URL     string            `hcl:"url"`
		Headers map[string]string `hcl:"headers,optional"`
	} `hcl:"endpoint,block"`
	Routes []struct {
		Name     string `hcl:"name,label"`
		Endpoint string `hcl:"endpoint"`
		Priority int    `hcl:"priority,optional"`
		Match    struct {
			Methods    []string          `hcl:"methods,optional"`
			Hosts      []string          `hcl:"hosts,optional"`
			Path       string            `hcl:"path,optional"`
			PathPrefix string            `hcl:"path_prefix,optional"`
			Headers    map[string]string `hcl:"headers,optional"`
			JQ         string            `hcl:"jq,optional"`
		} `hcl:"match,block"`
	} `hcl:"route,block"`
}

var placeholder = regexp.MustCompile(`^\{[A-Za-z_][A-Za-z0-9_]*\}$`)

func decodeTestConfig(t *testing.T, src string) *config.Config {
	t.Helper()
	var f testFile
	if err := hclsimple.Decode("config.hcl", []byte(src), nil, &f); err != nil {
		t.Fatal(err)
	}
	cfg := simpleConfig(t, "127.0.0.1:1")
	cfg.Endpoints = map[string]*config.Endpoint{}
	cfg.Routes = nil
	for _, e := range f.Endpoints {
		ep := &config.Endpoint{Name: e.Name, URL: mustURL(t, e.URL), Timeout: 5e9, Auth: config.Auth{Type: config.AuthNone}}
		for k, v := range e.Headers {
			ep.Headers = append(ep.Headers, config.Header{Name: textproto.CanonicalMIMEHeaderKey(k), Value: v})
		}
		sort.Slice(ep.Headers, func(i, j int) bool { return ep.Headers[i].Name < ep.Headers[j].Name })
		cfg.Endpoints[e.Name] = ep
	}
	for i, r := range f.Routes {
		m := config.Match{Methods: r.Match.Methods, Hosts: r.Match.Hosts, Path: r.Match.Path, PathPrefix: r.Match.PathPrefix}
		if strings.Contains(m.Path, "{") {
			for _, seg := range strings.Split(strings.TrimPrefix(m.Path, "/"), "/") {
				if placeholder.MatchString(seg) {
					m.PathSegments = append(m.PathSegments, config.Segment{Param: strings.Trim(seg, "{}")})
				} else {
					m.PathSegments = append(m.PathSegments, config.Segment{Literal: seg})
				}
			}
		}
		for k, v := range r.Match.Headers {
			hm := config.HeaderMatch{Name: textproto.CanonicalMIMEHeaderKey(k), Value: v}
			if rx, ok := strings.CutPrefix(v, "~"); ok {
				hm = config.HeaderMatch{Name: hm.Name, Regex: regexp.MustCompile("^(?:" + rx + ")$")}
			}
			m.Headers = append(m.Headers, hm)
		}
		sort.Slice(m.Headers, func(i, j int) bool { return m.Headers[i].Name < m.Headers[j].Name })
		if r.Match.JQ != "" {
			q, err := gojq.Parse(r.Match.JQ)
			if err != nil {
				t.Fatal(err)
			}
			code, err := gojq.Compile(q)
			if err != nil {
				t.Fatal(err)
			}
			m.JQ = &config.JQ{Source: r.Match.JQ, Code: code}
		}
		cfg.Routes = append(cfg.Routes, &config.Route{Name: r.Name, Index: i, Priority: r.Priority, Match: m, Mode: config.ModeSync, Endpoint: r.Endpoint})
	}
	return cfg
}

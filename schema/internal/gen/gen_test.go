package gen

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type rawTestRoot struct {
	Server *rawServer  `hcl:"server,block" doc:"Server."`
	Routes []*rawRoute `hcl:"route,block" doc:"Route."`
}

type rawServer struct {
	Listen string `hcl:"listen,optional" doc:"Listen."`
}

type rawRoute struct {
	Name     string            `hcl:"name,label" doc:"Name."`
	Endpoint string            `hcl:"endpoint" doc:"Endpoint."`
	Methods  []string          `hcl:"methods,optional" doc:"Methods."`
	Headers  map[string]string `hcl:"headers,optional" doc:"Headers."`
	Rate     float64           `hcl:"rate,optional" doc:"Rate."`
	Retry    *rawRetry         `hcl:"retry,block" doc:"Retry."`
	//lint:ignore U1000 an unexported field the generator must skip
	internal int
}

type rawRetry struct {
	Attempts int `hcl:"attempts,optional" doc:"Attempts."`
}

func TestJSONSchema(t *testing.T) {
	b, err := Describe(&rawTestRoot{})
	if err != nil {
		t.Fatal(err)
	}
	js, err := JSONSchema(b)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatal(err)
	}
	route := got["properties"].(map[string]any)["route"]
	want := map[string]any{
		"description": "Route.",
		"type":        "object",
		"additionalProperties": map[string]any{"anyOf": []any{
			map[string]any{"$ref": "#/$defs/route"},
			map[string]any{"type": "array", "items": map[string]any{"$ref": "#/$defs/route"}},
		}},
	}
	if diff := cmp.Diff(want, route); diff != "" {
		t.Errorf("route property (-want +got):\n%s", diff)
	}
	def := got["$defs"].(map[string]any)["route"].(map[string]any)
	if diff := cmp.Diff([]any{"endpoint"}, def["required"]); diff != "" {
		t.Errorf("required (-want +got):\n%s", diff)
	}
	if _, ok := def["properties"].(map[string]any)["name"]; ok {
		t.Error("the label is described as an attribute")
	}
}

func TestMarkdown(t *testing.T) {
	b, err := Describe(&rawTestRoot{})
	if err != nil {
		t.Fatal(err)
	}
	md := string(Markdown(b))
	for _, want := range []string{
		"\n## route\n",
		"route \"NAME\" {",
		"\n### route.retry\n",
		"| `endpoint` | string | yes | Endpoint. |",
		"| `methods` | list(string) | no | Methods. |",
		"| `attempts` | number (whole) | no | Attempts. |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestDescribeRejectsUndocumented(t *testing.T) {
	type bad struct {
		X string `hcl:"x"`
	}
	if _, err := Describe(&bad{}); err == nil {
		t.Error("no error for an attribute without a doc tag")
	}
}

func TestDefName(t *testing.T) {
	for in, want := range map[string]string{"rawSubmitAPI": "submit_api", "rawResultsRedis": "results_redis", "rawTLS": "tls", "rawRoute": "route"} {
		if got := defName(in); got != want {
			t.Errorf("defName(%q) = %q, want %q", in, got, want)
		}
	}
}

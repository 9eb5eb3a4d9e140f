package config

import (
	"testing"
)

// TestJQSeesNoEnvironment: a jq expression in a route cannot read the
// process environment, where the secrets of env() live.
func TestJQSeesNoEnvironment(t *testing.T) {
	t.Setenv("OPENHQM_TEST_SECRET", "s3cret")
	src := `
endpoint "app" {
  url = "http://127.0.0.1:8080"
}

route "r" {
  match {
    path_prefix = "/"
  }
  endpoint = "app"
  transform {
    body = "$ENV.OPENHQM_TEST_SECRET // env.OPENHQM_TEST_SECRET // \"none\""
  }
}
`
	cfg, _, diags := Parse(map[string][]byte{"t.hcl": []byte(src)}, Options{Mode: ModeValidate})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	iter := cfg.Routes[0].Transform.Body.Code.Run(nil)
	v, _ := iter.Next()
	if v != "none" {
		t.Fatalf("the expression read %v from the environment, want \"none\"", v)
	}
}

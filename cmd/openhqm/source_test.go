package main

import (
	"io/fs"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResolveSource(t *testing.T) {
	tests := []struct {
		name string
		flag string
		env  map[string]string
		etc  bool // /etc/openhqm exists
		want source
	}{
		{"flag first", "conf/", map[string]string{"OPENHQM_CONFIG": "/x", "OPENHQM_QUEUE__TYPE": "redis"}, true, source{kind: "file", paths: []string{"conf/"}}},
		{"OPENHQM_CONFIG", "", map[string]string{"OPENHQM_CONFIG": "/x", "OPENHQM_QUEUE__TYPE": "redis"}, true, source{kind: "file", paths: []string{"/x"}}},
		{"mounted directory before the original's variables", "", map[string]string{"OPENHQM_QUEUE__TYPE": "redis"}, true, source{kind: "file", paths: []string{defaultConfigDir}}},
		{"the original's variables", "", map[string]string{"OPENHQM_PROXY__ENABLED": "true"}, false, source{kind: "env"}},
		{"an empty variable is not set", "", map[string]string{"OPENHQM_PROXY__ENABLED": ""}, false, source{kind: "default"}},
		{"embedded default", "", nil, false, source{kind: "default"}},
	}
	defer func(f func(string) (os.FileInfo, error)) { statConfig = f }(statConfig)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			statConfig = func(string) (os.FileInfo, error) {
				if tc.etc {
					return nil, nil
				}
				return nil, fs.ErrNotExist
			}
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			got := resolveSource(tc.flag, lookup)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(source{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

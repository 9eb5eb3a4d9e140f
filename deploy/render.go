// Package deploy renders and checks the Kubernetes kit of openhqm. It is its own
// Go module so that the Kubernetes API types stay out of the main module.
//
// Render implements the small subset of kustomize the kit uses — resources
// (files and directories), configMapGenerator with files and options, and
// patches that delete a resource — and refuses every other kustomization field,
// so the tests never pass on a silently ignored instruction.
package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// ErrUnsupported reports a kustomization feature the renderer does not implement.
var ErrUnsupported = errors.New("unsupported by the test renderer")

// Object is one rendered manifest. JSON is the object as JSON, the form every
// strict decoder takes; Source names the file it came from (or the generator).
type Object struct {
	APIVersion string
	Kind       string
	Name       string
	Source     string
	JSON       []byte
}

// ID is "Kind/name", unique within a rendering.
func (o Object) ID() string { return o.Kind + "/" + o.Name }

// kustomization is the accepted subset of kustomize.config.k8s.io/v1beta1.
type kustomization struct {
	APIVersion         string      `json:"apiVersion"`
	Kind               string      `json:"kind"`
	Resources          []string    `json:"resources"`
	ConfigMapGenerator []generator `json:"configMapGenerator"`
	Patches            []patch     `json:"patches"`
}

type generator struct {
	Name    string           `json:"name"`
	Files   []string         `json:"files"`
	Options generatorOptions `json:"options"`
}

type generatorOptions struct {
	DisableNameSuffixHash bool              `json:"disableNameSuffixHash"`
	Labels                map[string]string `json:"labels"`
}

type patch struct {
	Patch string `json:"patch"`
}

// Render renders the kustomization in dir, like `kubectl kustomize dir` for
// the supported subset. Objects are sorted by kind, then name.
func Render(dir string) ([]Object, error) {
	objs, err := render(dir, 0)
	if err != nil {
		return nil, err
	}
	sort.Slice(objs, func(i, j int) bool {
		if objs[i].Kind != objs[j].Kind {
			return objs[i].Kind < objs[j].Kind
		}
		return objs[i].Name < objs[j].Name
	})
	return objs, nil
}

func render(dir string, depth int) ([]Object, error) {
	if depth > 8 {
		return nil, fmt.Errorf("%s: kustomizations nested too deep", dir)
	}
	path := filepath.Join(dir, "kustomization.yaml")
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kustomization: %w", err)
	}
	var k kustomization
	if err := strictYAML(src, &k); err != nil {
		return nil, fmt.Errorf("%s: %w (fields other than resources, configMapGenerator and patches are %w)", path, err, ErrUnsupported)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		return nil, fmt.Errorf("%s: apiVersion %q kind %q, want kustomize.config.k8s.io/v1beta1 Kustomization", path, k.APIVersion, k.Kind)
	}

	var objs []Object
	seen := map[string]string{}
	add := func(o Object) error {
		if prev, ok := seen[o.ID()]; ok {
			return fmt.Errorf("%s defined twice: in %s and %s", o.ID(), prev, o.Source)
		}
		seen[o.ID()] = o.Source
		objs = append(objs, o)
		return nil
	}

	for _, res := range k.Resources {
		p := filepath.Join(dir, res)
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%s: resource: %w", path, err)
		}
		var got []Object
		if fi.IsDir() {
			got, err = render(p, depth+1)
		} else {
			got, err = readManifests(p)
		}
		if err != nil {
			return nil, err
		}
		for _, o := range got {
			if err := add(o); err != nil {
				return nil, err
			}
		}
	}

	for _, g := range k.ConfigMapGenerator {
		o, err := generateConfigMap(dir, g)
		if err != nil {
			return nil, fmt.Errorf("%s: configMapGenerator %q: %w", path, g.Name, err)
		}
		if err := add(o); err != nil {
			return nil, err
		}
	}

	for i, p := range k.Patches {
		id, err := deletePatch(p)
		if err != nil {
			return nil, fmt.Errorf("%s: patches[%d]: %w", path, i, err)
		}
		kept := objs[:0]
		found := false
		for _, o := range objs {
			if o.ID() == id {
				found = true
				continue
			}
			kept = append(kept, o)
		}
		if !found {
			return nil, fmt.Errorf("%s: patches[%d] deletes %s, which does not exist", path, i, id)
		}
		objs = kept
	}
	return objs, nil
}

// readManifests splits a multi-document YAML file into objects.
func readManifests(path string) ([]Object, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var objs []Object
	for i, doc := range splitDocuments(src) {
		js, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i+1, err)
		}
		if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
			continue // only comments
		}
		o, err := objectFromJSON(js, fmt.Sprintf("%s#%d", path, i+1))
		if err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// splitDocuments splits YAML at lines that are exactly "---".
func splitDocuments(src []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	for _, line := range bytes.SplitAfter(src, []byte("\n")) {
		if string(bytes.TrimRight(line, "\r\n")) == "---" {
			docs = append(docs, bytes.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.Write(line)
	}
	return append(docs, cur.Bytes())
}

func objectFromJSON(js []byte, source string) (Object, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return Object{}, fmt.Errorf("%s: %w", source, err)
	}
	if head.APIVersion == "" || head.Kind == "" || head.Metadata.Name == "" {
		return Object{}, fmt.Errorf("%s: apiVersion, kind and metadata.name are required", source)
	}
	if head.Metadata.Namespace != "" {
		return Object{}, fmt.Errorf("%s: %s/%s sets a namespace; the kit leaves it to `kubectl apply -n`", source, head.Kind, head.Metadata.Name)
	}
	return Object{APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, Source: source, JSON: js}, nil
}

func generateConfigMap(dir string, g generator) (Object, error) {
	if !g.Options.DisableNameSuffixHash {
		return Object{}, fmt.Errorf("name suffix hashes are %w; set options.disableNameSuffixHash", ErrUnsupported)
	}
	data := map[string]string{}
	for _, f := range g.Files {
		key, file := filepath.Base(f), f
		if k, v, ok := strings.Cut(f, "="); ok {
			key, file = k, v
		}
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return Object{}, fmt.Errorf("read file: %w", err)
		}
		if _, dup := data[key]; dup {
			return Object{}, fmt.Errorf("key %q given twice", key)
		}
		data[key] = string(b)
	}
	cm := map[string]any{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata":   map[string]any{"name": g.Name},
		"data":       data,
	}
	if len(g.Options.Labels) > 0 {
		cm["metadata"] = map[string]any{"name": g.Name, "labels": g.Options.Labels}
	}
	js, err := json.Marshal(cm)
	if err != nil {
		return Object{}, fmt.Errorf("encode configmap: %w", err)
	}
	return Object{APIVersion: "v1", Kind: "ConfigMap", Name: g.Name, Source: filepath.Join(dir, "kustomization.yaml") + " configMapGenerator", JSON: js}, nil
}

// deletePatch accepts only a strategic-merge patch "$patch: delete" and returns
// the ID of the object it deletes.
func deletePatch(p patch) (string, error) {
	var d struct {
		Patch      string `json:"$patch"`
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := strictYAML([]byte(p.Patch), &d); err != nil || d.Patch != "delete" {
		return "", fmt.Errorf("only inline `$patch: delete` patches are %w", errors.Join(ErrUnsupported, err))
	}
	return d.Kind + "/" + d.Metadata.Name, nil
}

// strictYAML decodes YAML into v, refusing duplicate and unknown fields.
func strictYAML(src []byte, v any) error {
	js, err := yaml.YAMLToJSONStrict(src)
	if err != nil {
		return err
	}
	return StrictJSON(js, v)
}

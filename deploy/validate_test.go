package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// openhqmBin is the openhqm binary built from the main module (the parent
// directory) once for the whole package; buildErr says why it is missing.
var (
	openhqmBin string
	buildErr   error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "openhqm-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	openhqmBin, buildErr = buildOpenhqm(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildOpenhqm builds ../cmd/openhqm with the main module's own go.mod, so this
// module does not need to repeat its dependencies.
func buildOpenhqm(dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "openhqm")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/openhqm")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/openhqm in the main module: %w\n%s", err, out)
	}
	return bin, nil
}

// placeholderSecret stands in for Secret values the kit does not ship (the
// operator creates them); a Redis URL, because that is what the kit reads.
const placeholderSecret = "redis://redis.invalid:6379/0"

// checkValidate runs `openhqm validate --strict` on the ConfigMap exactly as
// mounted, once per openhqm container, with that container's environment.
func checkValidate(t *testing.T, k *kit, ohs []openhqmContainer, cm *corev1.ConfigMap) {
	if buildErr != nil {
		t.Fatalf("cannot check the mounted configuration with `openhqm validate`: %v", buildErr)
	}
	dir := t.TempDir()
	for key, val := range cm.Data {
		if err := os.WriteFile(filepath.Join(dir, key), []byte(val), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, oc := range ohs {
		t.Run(string(oc.role), func(t *testing.T) {
			env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
			for _, e := range oc.c.Env {
				v, err := envValue(k, e)
				if err != nil {
					t.Fatalf("%s container %s: %v", oc.w.id(), oc.c.Name, err)
				}
				env = append(env, e.Name+"="+v)
			}
			cmd := exec.Command(openhqmBin, "validate", "--strict", "--format", "text", dir)
			cmd.Env = env
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			var exit *exec.ExitError
			switch {
			case errors.As(err, &exit):
				t.Errorf("openhqm validate --strict of ConfigMap %s with the env of %s container %s: exit %d\n%s",
					cm.Name, oc.w.id(), oc.c.Name, exit.ExitCode(), out.String())
			case err != nil:
				t.Fatalf("run openhqm validate: %v", err)
			}
		})
	}
}

// envValue resolves what a container's variable holds at run time, as far as
// the manifests say.
func envValue(k *kit, e corev1.EnvVar) (string, error) {
	switch {
	case e.ValueFrom == nil:
		return e.Value, nil
	case e.ValueFrom.FieldRef != nil:
		return "pod-0", nil
	case e.ValueFrom.SecretKeyRef != nil:
		ref := e.ValueFrom.SecretKeyRef
		s, ok := k.secrets[ref.Name]
		if !ok {
			return placeholderSecret, nil
		}
		if v, ok := s.StringData[ref.Key]; ok {
			return v, nil
		}
		if v, ok := s.Data[ref.Key]; ok {
			return string(v), nil
		}
		return "", fmt.Errorf("env %s: Secret %s has no key %q", e.Name, ref.Name, ref.Key)
	}
	return "", fmt.Errorf("env %s: unsupported valueFrom", e.Name)
}

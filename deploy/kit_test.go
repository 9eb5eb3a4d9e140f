package deploy

import (
	"fmt"
	"path"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// kit is one rendered kustomization, every object strictly decoded into its
// API type.
type kit struct {
	dir       string
	objects   []Object
	workloads []workload
	// by name
	services        map[string]*corev1.Service
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	serviceAccounts map[string]*corev1.ServiceAccount
	hpas            map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs            map[string]*policyv1.PodDisruptionBudget
	netpols         map[string]*networkingv1.NetworkPolicy
	serviceMonitors map[string]*ServiceMonitor
	scaledObjects   map[string]*ScaledObject
	triggerAuths    map[string]*TriggerAuthentication
}

// workload is a Deployment or StatefulSet: what owns a pod template.
type workload struct {
	kind     string
	name     string
	selector *metav1.LabelSelector
	replicas *int32
	template *corev1.PodTemplateSpec
}

func (w workload) id() string { return w.kind + "/" + w.name }

// decode strictly decodes o into a new T after checking its apiVersion.
func decode[T any](o Object, apiVersion string) (*T, error) {
	if o.APIVersion != apiVersion {
		return nil, fmt.Errorf("%s (%s): apiVersion %q, want %q", o.ID(), o.Source, o.APIVersion, apiVersion)
	}
	v := new(T)
	if err := StrictJSON(o.JSON, v); err != nil {
		return nil, fmt.Errorf("%s (%s): %w", o.ID(), o.Source, err)
	}
	return v, nil
}

func loadKit(t *testing.T, dir string) *kit {
	t.Helper()
	objs, err := Render(dir)
	if err != nil {
		t.Fatalf("render %s: %v", dir, err)
	}
	k := &kit{
		dir:             dir,
		objects:         objs,
		services:        map[string]*corev1.Service{},
		configMaps:      map[string]*corev1.ConfigMap{},
		secrets:         map[string]*corev1.Secret{},
		serviceAccounts: map[string]*corev1.ServiceAccount{},
		hpas:            map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		pdbs:            map[string]*policyv1.PodDisruptionBudget{},
		netpols:         map[string]*networkingv1.NetworkPolicy{},
		serviceMonitors: map[string]*ServiceMonitor{},
		scaledObjects:   map[string]*ScaledObject{},
		triggerAuths:    map[string]*TriggerAuthentication{},
	}
	for _, o := range objs {
		var err error
		switch o.Kind {
		case "Deployment":
			var d *appsv1.Deployment
			if d, err = decode[appsv1.Deployment](o, "apps/v1"); err == nil {
				k.workloads = append(k.workloads, workload{o.Kind, o.Name, d.Spec.Selector, d.Spec.Replicas, &d.Spec.Template})
			}
		case "StatefulSet":
			var s *appsv1.StatefulSet
			if s, err = decode[appsv1.StatefulSet](o, "apps/v1"); err == nil {
				k.workloads = append(k.workloads, workload{o.Kind, o.Name, s.Spec.Selector, s.Spec.Replicas, &s.Spec.Template})
			}
		case "Service":
			k.services[o.Name], err = decode[corev1.Service](o, "v1")
		case "ConfigMap":
			k.configMaps[o.Name], err = decode[corev1.ConfigMap](o, "v1")
		case "Secret":
			k.secrets[o.Name], err = decode[corev1.Secret](o, "v1")
		case "ServiceAccount":
			k.serviceAccounts[o.Name], err = decode[corev1.ServiceAccount](o, "v1")
		case "HorizontalPodAutoscaler":
			k.hpas[o.Name], err = decode[autoscalingv2.HorizontalPodAutoscaler](o, "autoscaling/v2")
		case "PodDisruptionBudget":
			k.pdbs[o.Name], err = decode[policyv1.PodDisruptionBudget](o, "policy/v1")
		case "NetworkPolicy":
			k.netpols[o.Name], err = decode[networkingv1.NetworkPolicy](o, "networking.k8s.io/v1")
		case "ServiceMonitor":
			k.serviceMonitors[o.Name], err = decode[ServiceMonitor](o, "monitoring.coreos.com/v1")
		case "ScaledObject":
			k.scaledObjects[o.Name], err = decode[ScaledObject](o, "keda.sh/v1alpha1")
		case "TriggerAuthentication":
			k.triggerAuths[o.Name], err = decode[TriggerAuthentication](o, "keda.sh/v1alpha1")
		default:
			// Role, RoleBinding and friends included: openhqm needs no API access.
			err = fmt.Errorf("%s (%s): kind %s is not expected in the kit", o.ID(), o.Source, o.Kind)
		}
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return k
}

// podsMatching returns the workloads whose pod template labels sel selects.
func (k *kit) podsMatching(sel labels.Selector) []workload {
	var out []workload
	for _, w := range k.workloads {
		if sel.Matches(labels.Set(w.template.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

func (k *kit) workload(kind, name string) (workload, bool) {
	for _, w := range k.workloads {
		if w.kind == kind && w.name == name {
			return w, true
		}
	}
	return workload{}, false
}

// role says what an openhqm container runs.
type role string

const (
	roleServe  role = "serve"
	roleWorker role = "worker"
)

// openhqmContainer is a container running the openhqm image.
type openhqmContainer struct {
	w         workload
	c         *corev1.Container
	role      role
	configDir string // value of -c
}

// isOpenhqmImage says whether image is the openhqm image, by repository name.
func isOpenhqmImage(image string) bool {
	repo := image
	if i := strings.IndexAny(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return path.Base(repo) == "openhqm"
}

func (k *kit) openhqmContainers(t *testing.T) []openhqmContainer {
	t.Helper()
	var out []openhqmContainer
	for _, w := range k.workloads {
		for i := range w.template.Spec.Containers {
			c := &w.template.Spec.Containers[i]
			if !isOpenhqmImage(c.Image) {
				continue
			}
			if len(c.Command) != 0 {
				t.Errorf("%s container %s: command overrides the image's entrypoint `openhqm`; use args", w.id(), c.Name)
			}
			oc := openhqmContainer{w: w, c: c}
			if len(c.Args) == 0 {
				t.Errorf("%s container %s: no args; want serve or worker", w.id(), c.Name)
				continue
			}
			oc.role = role(c.Args[0])
			if oc.role != roleServe && oc.role != roleWorker {
				t.Errorf("%s container %s: runs %q, want serve or worker", w.id(), c.Name, c.Args[0])
				continue
			}
			for j := 1; j < len(c.Args); j++ {
				if (c.Args[j] == "-c" || c.Args[j] == "--config") && j+1 < len(c.Args) {
					oc.configDir = c.Args[j+1]
				}
			}
			out = append(out, oc)
		}
	}
	return out
}

// containerPort resolves a port given by number or name on container c.
func containerPort(c *corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if p.Type == intstr.String && cp.Name == p.StrVal {
			return cp.ContainerPort, true
		}
		if p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// podPort resolves a port by number or name across the containers of a pod,
// returning the container that declares it.
func podPort(spec *corev1.PodSpec, p intstr.IntOrString) (int32, *corev1.Container, bool) {
	for i := range spec.Containers {
		if n, ok := containerPort(&spec.Containers[i], p); ok {
			return n, &spec.Containers[i], true
		}
	}
	return 0, nil, false
}

func selector(t *testing.T, what string, s *metav1.LabelSelector) labels.Selector {
	t.Helper()
	if s == nil || (len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0) {
		t.Errorf("%s: empty selector selects everything", what)
		return labels.Nothing()
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		t.Errorf("%s: selector: %v", what, err)
		return labels.Nothing()
	}
	return sel
}

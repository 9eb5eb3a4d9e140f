package deploy

import (
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The kit's kustomizations and what each must contain.
var kits = []struct {
	dir        string
	autoscaler string // "hpa" or "keda"; "" for none
	// monitors: the ServiceMonitors are part of it (needs the Prometheus Operator).
	monitors bool
	// ownSecret: the kustomization ships the Secrets redis-credentials and
	// openhqm-admin instead of expecting them to exist.
	ownSecret bool
}{
	{dir: "base", autoscaler: "hpa", monitors: true},
	{dir: "overlays/keda", autoscaler: "keda", monitors: true},
	{dir: "overlays/dev", ownSecret: true},
}

// externalSecrets is the contract with the operator: Secrets the kit reads but
// does not create, with the keys it reads (docs/kubernetes.md says how to make it).
var externalSecrets = map[string][]string{
	"redis-credentials": {"address", "connection-string", "password"},
	"openhqm-admin":     {"token"},
}

// adminPaths are the paths each openhqm process serves itself.
var adminPaths = map[role][]string{
	roleServe:  {"/-/healthz", "/-/readyz", "/health", "/metrics"},
	roleWorker: {"/health", "/-/readyz", "/metrics"},
}

// metricNames are the metrics openhqm exports.
var metricNames = []string{
	"openhqm_worker_processing_duration_seconds",
	"openhqm_worker_errors_total",
	"openhqm_worker_active",
	"openhqm_worker_jobs_total",
	"openhqm_queue_depth",
	"openhqm_queue_oldest_job_age_seconds",
	"openhqm_http_requests_total",
	"openhqm_http_request_duration_seconds",
	"openhqm_config_reloads_total",
	"openhqm_config_last_reload_success_timestamp_seconds",
	"openhqm_config_generation",
}

func TestKits(t *testing.T) {
	for _, tc := range kits {
		t.Run(path.Base(tc.dir), func(t *testing.T) {
			k := loadKit(t, tc.dir)
			ohs := k.openhqmContainers(t)
			roles := map[role]int{}
			for _, oc := range ohs {
				roles[oc.role]++
			}
			if diff := cmp.Diff(map[role]int{roleServe: 1, roleWorker: 1}, roles); diff != "" {
				t.Fatalf("openhqm containers by role (-want +got):\n%s", diff)
			}
			cm, hclKey := mountedConfig(t, k, ohs)
			facts, err := ReadFacts(hclKey, []byte(cm.Data[hclKey]))
			if err != nil {
				t.Fatal(err)
			}

			t.Run("workloads", func(t *testing.T) { checkWorkloads(t, k) })
			t.Run("containers", func(t *testing.T) { checkContainers(t, k) })
			t.Run("openhqm", func(t *testing.T) { checkOpenhqm(t, k, ohs, facts) })
			t.Run("services", func(t *testing.T) { checkServices(t, k) })
			t.Run("secrets", func(t *testing.T) { checkSecrets(t, k, tc.ownSecret) })
			t.Run("service-accounts", func(t *testing.T) { checkServiceAccounts(t, k) })
			t.Run("disruption-budgets", func(t *testing.T) { checkPDBs(t, k) })
			t.Run("network-policies", func(t *testing.T) { checkNetworkPolicies(t, k, ohs, facts) })
			t.Run("service-monitors", func(t *testing.T) { checkServiceMonitors(t, k, ohs, facts, tc.monitors) })
			t.Run("autoscaling", func(t *testing.T) { checkAutoscaling(t, k, ohs, facts, tc.autoscaler) })
			t.Run("validate", func(t *testing.T) { checkValidate(t, k, ohs, cm) })
		})
	}
}

// mountedConfig returns the one ConfigMap every openhqm container mounts as
// its -c directory, and its HCL key.
func mountedConfig(t *testing.T, k *kit, ohs []openhqmContainer) (*corev1.ConfigMap, string) {
	t.Helper()
	var cm *corev1.ConfigMap
	for _, oc := range ohs {
		what := oc.w.id() + " container " + oc.c.Name
		if oc.configDir == "" {
			t.Fatalf("%s: no -c directory in args %q", what, oc.c.Args)
		}
		var mount *corev1.VolumeMount
		for i := range oc.c.VolumeMounts {
			if oc.c.VolumeMounts[i].MountPath == oc.configDir {
				mount = &oc.c.VolumeMounts[i]
			}
		}
		if mount == nil {
			t.Fatalf("%s: nothing is mounted at the -c directory %s", what, oc.configDir)
		}
		if mount.SubPath != "" || mount.SubPathExpr != "" {
			t.Errorf("%s: config mounted with subPath: Kubernetes never updates it, so hot reload cannot work", what)
		}
		if !mount.ReadOnly {
			t.Errorf("%s: config mount is not readOnly", what)
		}
		var vol *corev1.Volume
		for i := range oc.w.template.Spec.Volumes {
			if oc.w.template.Spec.Volumes[i].Name == mount.Name {
				vol = &oc.w.template.Spec.Volumes[i]
			}
		}
		if vol == nil || vol.ConfigMap == nil {
			t.Fatalf("%s: volume %q is not a configMap volume of the pod", what, mount.Name)
		}
		if len(vol.ConfigMap.Items) != 0 {
			t.Errorf("%s: volume %q lists items; mount the whole ConfigMap so every *.hcl in it is loaded", what, vol.Name)
		}
		got, ok := k.configMaps[vol.ConfigMap.Name]
		if !ok {
			t.Fatalf("%s: mounts ConfigMap %q, which the kit does not define", what, vol.ConfigMap.Name)
		}
		if cm != nil && cm != got {
			t.Errorf("%s: mounts ConfigMap %q; the other openhqm container mounts %q", what, got.Name, cm.Name)
		}
		cm = got
	}
	var keys []string
	for key := range cm.Data {
		if strings.HasSuffix(key, ".hcl") {
			keys = append(keys, key)
		}
	}
	if len(keys) != 1 {
		t.Fatalf("ConfigMap %s: HCL keys %q, want exactly one", cm.Name, keys)
	}
	return cm, keys[0]
}

func checkWorkloads(t *testing.T, k *kit) {
	for _, w := range k.workloads {
		sel := selector(t, w.id(), w.selector)
		if !sel.Matches(labels.Set(w.template.Labels)) {
			t.Errorf("%s: selector %s does not match its pod template labels %v", w.id(), sel, w.template.Labels)
		}
		for _, other := range k.workloads {
			if other.id() != w.id() && sel.Matches(labels.Set(other.template.Labels)) {
				t.Errorf("%s: selector %s also matches the pods of %s", w.id(), sel, other.id())
			}
		}
	}
}

// checkContainers enforces the restricted Pod Security Standard and resource
// bounds on every container of the kit.
func checkContainers(t *testing.T, k *kit) {
	for _, w := range k.workloads {
		spec := &w.template.Spec
		psc := spec.SecurityContext
		if spec.HostNetwork || spec.HostPID || spec.HostIPC {
			t.Errorf("%s: uses host namespaces", w.id())
		}
		all := append(slices.Clone(spec.InitContainers), spec.Containers...)
		for _, c := range all {
			what := w.id() + " container " + c.Name
			sc := c.SecurityContext
			if sc == nil {
				t.Errorf("%s: no securityContext", what)
				continue
			}
			nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) ||
				(sc.RunAsNonRoot == nil && psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
			if !nonRoot {
				t.Errorf("%s: runAsNonRoot is not true", what)
			}
			if uid := sc.RunAsUser; uid != nil && *uid == 0 {
				t.Errorf("%s: runAsUser 0", what)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem is not true", what)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", what)
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Errorf("%s: privileged", what)
			}
			if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities must drop [ALL] and add none, got %+v", what, sc.Capabilities)
			}
			seccomp := sc.SeccompProfile
			if seccomp == nil && psc != nil {
				seccomp = psc.SeccompProfile
			}
			if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: seccompProfile is not RuntimeDefault", what)
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, okReq := c.Resources.Requests[r]
				lim, okLim := c.Resources.Limits[r]
				if !okReq || !okLim {
					t.Errorf("%s: %s request and limit are both required", what, r)
					continue
				}
				if req.Cmp(lim) > 0 {
					t.Errorf("%s: %s request %s above limit %s", what, r, req.String(), lim.String())
				}
			}
			if c.ImagePullPolicy == "" {
				t.Errorf("%s: no imagePullPolicy", what)
			}
		}
	}
}

func checkOpenhqm(t *testing.T, k *kit, ohs []openhqmContainer, f *Facts) {
	if !f.Canonical {
		t.Errorf("openhqm.hcl is not in canonical format: run `openhqm fmt deploy/base`")
	}
	if f.WorkerEmbedded {
		t.Errorf("worker.embedded is true: the sidecar would consume jobs too; the kit has a worker Deployment")
	}
	adminPort, err := f.AdminPort()
	if err != nil {
		t.Fatal(err)
	}
	listenPort, err := Port(f.Listen)
	if err != nil {
		t.Fatal(err)
	}
	workerPort, err := Port(f.WorkerListen)
	if err != nil {
		t.Fatal(err)
	}
	for _, oc := range ohs {
		what := oc.w.id() + " container " + oc.c.Name
		spec := &oc.w.template.Spec

		grace := int64(30) // the API default
		if spec.TerminationGracePeriodSeconds != nil {
			grace = *spec.TerminationGracePeriodSeconds
		}
		if grace <= int64(f.Drain.Seconds()) {
			t.Errorf("%s: terminationGracePeriodSeconds %d is not longer than worker.drain %s", oc.w.id(), grace, f.Drain)
		}

		wantPorts := []int32{workerPort}
		probePort := workerPort
		if oc.role == roleServe {
			wantPorts = []int32{listenPort}
			if adminPort != listenPort {
				wantPorts = append(wantPorts, adminPort)
			}
			probePort = adminPort
		}
		var declared []int32
		for _, p := range oc.c.Ports {
			declared = append(declared, p.ContainerPort)
		}
		if diff := cmp.Diff(wantPorts, declared); diff != "" {
			t.Errorf("%s: container ports differ from the config's listeners (-want +got):\n%s", what, diff)
		}

		probes := map[string]*corev1.Probe{"liveness": oc.c.LivenessProbe, "readiness": oc.c.ReadinessProbe}
		for kind, p := range probes {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("%s: no %s httpGet probe", what, kind)
				continue
			}
			if !slices.Contains(adminPaths[oc.role], p.HTTPGet.Path) {
				t.Errorf("%s: %s probe path %q is not served by openhqm %s (%q)", what, kind, p.HTTPGet.Path, oc.role, adminPaths[oc.role])
			}
			n, ok := containerPort(oc.c, p.HTTPGet.Port)
			if !ok {
				t.Errorf("%s: %s probe port %s is not a port of the container", what, kind, p.HTTPGet.Port.String())
			} else if n != probePort {
				t.Errorf("%s: %s probe on port %d, but the admin paths are on %d", what, kind, n, probePort)
			}
		}
		if p := oc.c.LivenessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path == "/-/readyz" {
			t.Errorf("%s: liveness probe on /-/readyz restarts pods whenever Redis is unreachable", what)
		}

		env := map[string]corev1.EnvVar{}
		for _, e := range oc.c.Env {
			env[e.Name] = e
		}
		for _, name := range f.RequiredEnv {
			if _, ok := env[name]; !ok {
				t.Errorf("%s: the config reads env(%q) with no default, and the container does not set it", what, name)
			}
		}
		if oc.role == roleWorker {
			if !slices.Equal(oc.c.Args[len(oc.c.Args)-2:], []string{"--name", "$(POD_NAME)"}) {
				t.Errorf("%s: args %q do not end with --name $(POD_NAME): the consumer name must be stable per pod", what, oc.c.Args)
			}
			pod, ok := env["POD_NAME"]
			if !ok || pod.ValueFrom == nil || pod.ValueFrom.FieldRef == nil || pod.ValueFrom.FieldRef.FieldPath != "metadata.name" {
				t.Errorf("%s: POD_NAME must come from fieldRef metadata.name", what)
			}
		}
	}
}

func checkServices(t *testing.T, k *kit) {
	if len(k.services) == 0 {
		t.Fatal("no Services")
	}
	for name, s := range k.services {
		what := "Service/" + name
		if len(s.Spec.Selector) == 0 {
			t.Errorf("%s: no selector", what)
			continue
		}
		pods := k.podsMatching(labels.SelectorFromSet(s.Spec.Selector))
		if len(pods) == 0 {
			t.Errorf("%s: selector %v matches no pod template", what, s.Spec.Selector)
		}
		for _, sp := range s.Spec.Ports {
			target := sp.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(sp.Port)
			}
			for _, w := range pods {
				if _, _, ok := podPort(&w.template.Spec, target); !ok {
					t.Errorf("%s port %q: targetPort %s is not a container port of %s", what, sp.Name, target.String(), w.id())
				}
			}
		}
	}
}

// secretRefs lists every Secret name and key the kit reads.
func secretRefs(k *kit) map[string][]string {
	refs := map[string][]string{}
	add := func(name, key string) {
		if !slices.Contains(refs[name], key) {
			refs[name] = append(refs[name], key)
			sort.Strings(refs[name])
		}
	}
	for _, w := range k.workloads {
		for _, c := range w.template.Spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					add(e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.SecretRef != nil {
					add(ef.SecretRef.Name, "*")
				}
			}
		}
	}
	for _, ta := range k.triggerAuths {
		for _, r := range ta.Spec.SecretTargetRef {
			add(r.Name, r.Key)
		}
	}
	return refs
}

func checkSecrets(t *testing.T, k *kit, ownSecret bool) {
	for name, keys := range secretRefs(k) {
		contract, external := externalSecrets[name]
		if !external {
			t.Errorf("Secret %s is read but is not part of the documented contract %v", name, externalSecrets)
			continue
		}
		for _, key := range keys {
			if !slices.Contains(contract, key) {
				t.Errorf("Secret %s: key %q is read but is not in the documented contract %q", name, key, contract)
			}
		}
	}
	for name, contract := range externalSecrets {
		s, shipped := k.secrets[name]
		if shipped != ownSecret {
			t.Errorf("Secret %s shipped by the kit: %v, want %v", name, shipped, ownSecret)
		}
		if !shipped {
			continue
		}
		// A shipped Secret carries every key of the contract, so any overlay
		// (the KEDA one included) works on top of it.
		for _, key := range contract {
			_, inData := s.Data[key]
			_, inString := s.StringData[key]
			if !inData && !inString {
				t.Errorf("Secret %s: missing key %q", name, key)
			}
		}
	}
}

func checkServiceAccounts(t *testing.T, k *kit) {
	for _, w := range k.workloads {
		spec := &w.template.Spec
		token := true
		if name := spec.ServiceAccountName; name != "" {
			sa, ok := k.serviceAccounts[name]
			if !ok {
				t.Errorf("%s: ServiceAccount %q is not in the kit", w.id(), name)
			} else if sa.AutomountServiceAccountToken != nil {
				token = *sa.AutomountServiceAccountToken
			}
		}
		if spec.AutomountServiceAccountToken != nil {
			token = *spec.AutomountServiceAccountToken
		}
		if token {
			t.Errorf("%s: mounts a service account token; nothing in the kit calls the API", w.id())
		}
	}
}

func checkPDBs(t *testing.T, k *kit) {
	covered := map[string]bool{}
	for name, p := range k.pdbs {
		what := "PodDisruptionBudget/" + name
		pods := k.podsMatching(selector(t, what, p.Spec.Selector))
		if len(pods) != 1 {
			t.Errorf("%s: selects %d workloads' pods, want exactly 1", what, len(pods))
		}
		for _, w := range pods {
			covered[w.id()] = true
		}
		if p.Spec.MinAvailable != nil {
			t.Errorf("%s: minAvailable blocks scaling the workers to zero and draining single replicas; use maxUnavailable", what)
		}
		if p.Spec.MaxUnavailable == nil {
			t.Errorf("%s: no maxUnavailable", what)
		}
	}
	for _, w := range k.workloads {
		if w.kind == "Deployment" && !covered[w.id()] {
			t.Errorf("%s: no PodDisruptionBudget", w.id())
		}
	}
}

// portIn says whether a NetworkPolicy port (number or name) is a container port
// of the pod.
func portIn(spec *corev1.PodSpec, p networkingv1.NetworkPolicyPort) (int32, bool) {
	if p.Port == nil {
		return 0, false
	}
	n, _, ok := podPort(spec, *p.Port)
	return n, ok
}

func checkNetworkPolicies(t *testing.T, k *kit, ohs []openhqmContainer, f *Facts) {
	openPorts := map[int32]bool{} // ports of openhqm's own listeners
	for _, oc := range ohs {
		for _, p := range oc.c.Ports {
			openPorts[p.ContainerPort] = true
		}
	}
	policyTypes := map[string][]networkingv1.PolicyType{}
	for name, np := range k.netpols {
		what := "NetworkPolicy/" + name
		pods := k.podsMatching(selector(t, what, &np.Spec.PodSelector))
		if len(pods) == 0 {
			t.Errorf("%s: selects no pods", what)
		}
		for _, w := range pods {
			policyTypes[w.id()] = append(policyTypes[w.id()], np.Spec.PolicyTypes...)
			for i, rule := range np.Spec.Ingress {
				for _, p := range rule.Ports {
					n, ok := portIn(&w.template.Spec, p)
					if !ok {
						t.Errorf("%s ingress[%d]: port %v is not a container port of %s", what, i, p.Port, w.id())
					}
					if len(rule.From) == 0 && !openPorts[n] && w.kind == "Deployment" {
						t.Errorf("%s ingress[%d]: port %d of %s is open to everyone but is not an openhqm listener", what, i, n, w.id())
					}
				}
				if len(rule.Ports) == 0 {
					t.Errorf("%s ingress[%d]: allows every port", what, i)
				}
			}
			for i, rule := range np.Spec.Egress {
				if len(rule.Ports) == 0 {
					t.Errorf("%s egress[%d]: allows every port", what, i)
				}
				for _, peer := range rule.To {
					if peer.PodSelector == nil || peer.NamespaceSelector != nil || peer.IPBlock != nil {
						continue
					}
					dst := k.podsMatching(selector(t, what, peer.PodSelector))
					if len(dst) == 0 {
						t.Errorf("%s egress[%d]: podSelector selects no pods of the kit", what, i)
					}
					for _, d := range dst {
						for _, p := range rule.Ports {
							if _, ok := portIn(&d.template.Spec, p); !ok {
								t.Errorf("%s egress[%d]: port %v is not a container port of %s", what, i, p.Port, d.id())
							}
						}
					}
				}
			}
		}
	}
	for _, oc := range ohs {
		got := policyTypes[oc.w.id()]
		if !slices.Contains(got, networkingv1.PolicyTypeIngress) || !slices.Contains(got, networkingv1.PolicyTypeEgress) {
			t.Errorf("%s: not covered by both an Ingress and an Egress NetworkPolicy (got %v)", oc.w.id(), got)
		}
	}

	// The workers must be allowed to reach the app where APP_URL points: out of
	// their pods by their egress policy, into the app's pods by its ingress one.
	for _, oc := range ohs {
		if oc.role != roleWorker {
			continue
		}
		var appURL string
		for _, e := range oc.c.Env {
			if e.Name == "APP_URL" {
				appURL = e.Value
			}
		}
		u, err := url.Parse(appURL)
		if err != nil || u.Hostname() == "" {
			t.Errorf("%s: APP_URL %q is not a URL", oc.w.id(), appURL)
			continue
		}
		svc, ok := k.services[strings.Split(u.Hostname(), ".")[0]]
		if !ok {
			t.Errorf("%s: APP_URL %s names no Service of the kit", oc.w.id(), appURL)
			continue
		}
		port, _ := strconv.Atoi(u.Port())
		var sp *corev1.ServicePort
		for i := range svc.Spec.Ports {
			if int(svc.Spec.Ports[i].Port) == port {
				sp = &svc.Spec.Ports[i]
			}
		}
		if sp == nil {
			t.Errorf("%s: APP_URL %s: Service %s has no port %d", oc.w.id(), appURL, svc.Name, port)
			continue
		}
		for _, app := range k.podsMatching(labels.SelectorFromSet(svc.Spec.Selector)) {
			n, c, ok := podPort(&app.template.Spec, sp.TargetPort)
			if !ok {
				continue // reported by checkServices
			}
			if isOpenhqmImage(c.Image) {
				t.Errorf("%s: APP_URL %s reaches openhqm in %s, not the app", oc.w.id(), appURL, app.id())
			}
			if !allowed(k, oc.w, app, n) {
				t.Errorf("%s → %s port %d (APP_URL %s) is not allowed by the NetworkPolicies", oc.w.id(), app.id(), n, appURL)
			}
		}
	}
}

// allowed says whether the policies let pods of src open TCP connections to
// port on pods of dst, for peers given by podSelector.
func allowed(k *kit, src, dst workload, port int32) bool {
	matches := func(s labels.Selector, w workload) bool {
		return s.Matches(labels.Set(w.template.Labels))
	}
	out, in := false, false
	for _, np := range k.netpols {
		sel, err := labelSelector(&np.Spec.PodSelector)
		if err != nil {
			continue
		}
		if matches(sel, src) {
			for _, rule := range np.Spec.Egress {
				if peerAllows(rule.To, dst) && portAllows(rule.Ports, &dst.template.Spec, port) {
					out = true
				}
			}
		}
		if matches(sel, dst) {
			for _, rule := range np.Spec.Ingress {
				if peerAllows(rule.From, src) && portAllows(rule.Ports, &dst.template.Spec, port) {
					in = true
				}
			}
		}
	}
	return out && in
}

func labelSelector(s *metav1.LabelSelector) (labels.Selector, error) {
	return metav1.LabelSelectorAsSelector(s)
}

func peerAllows(peers []networkingv1.NetworkPolicyPeer, w workload) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if p.PodSelector == nil || p.NamespaceSelector != nil || p.IPBlock != nil {
			continue
		}
		sel, err := labelSelector(p.PodSelector)
		if err == nil && sel.Matches(labels.Set(w.template.Labels)) {
			return true
		}
	}
	return false
}

func portAllows(ports []networkingv1.NetworkPolicyPort, spec *corev1.PodSpec, port int32) bool {
	for _, p := range ports {
		if n, ok := portIn(spec, p); ok && n == port {
			return true
		}
	}
	return false
}

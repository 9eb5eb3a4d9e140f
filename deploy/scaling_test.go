package deploy

import (
	"slices"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func checkServiceMonitors(t *testing.T, k *kit, ohs []openhqmContainer, f *Facts, want bool) {
	if !want {
		if len(k.serviceMonitors) != 0 {
			t.Errorf("ServiceMonitors present; this kustomization must apply without the Prometheus Operator")
		}
		return
	}
	scraped := map[string]bool{}
	for name, sm := range k.serviceMonitors {
		what := "ServiceMonitor/" + name
		sel := selector(t, what, &sm.Spec.Selector)
		var svcs []string
		for sname, s := range k.services {
			if sel.Matches(labels.Set(s.Labels)) {
				svcs = append(svcs, sname)
			}
		}
		if len(svcs) == 0 {
			t.Errorf("%s: selects no Service", what)
		}
		if len(sm.Spec.Endpoints) == 0 {
			t.Errorf("%s: no endpoints", what)
		}
		for _, ep := range sm.Spec.Endpoints {
			if ep.Path != "/metrics" {
				t.Errorf("%s: path %q, openhqm serves metrics on /metrics", what, ep.Path)
			}
			found := false
			for _, sname := range svcs {
				s := k.services[sname]
				for _, sp := range s.Spec.Ports {
					if sp.Name != ep.Port {
						continue
					}
					found = true
					for _, w := range k.podsMatching(labels.SelectorFromSet(s.Spec.Selector)) {
						target := sp.TargetPort
						if target.Type == intstr.Int && target.IntVal == 0 {
							target = intstr.FromInt32(sp.Port)
						}
						n, c, ok := podPort(&w.template.Spec, target)
						if !ok {
							continue // reported by checkServices
						}
						if !isOpenhqmImage(c.Image) {
							t.Errorf("%s: port %q of Service %s reaches container %s of %s, which is not openhqm", what, ep.Port, sname, c.Name, w.id())
							continue
						}
						for _, oc := range ohs {
							if oc.w.id() != w.id() || oc.c.Name != c.Name {
								continue
							}
							want, _ := Port(f.WorkerListen)
							if oc.role == roleServe {
								want, _ = f.AdminPort()
							}
							if n != want {
								t.Errorf("%s: scrapes port %d of %s, but /metrics is on %d", what, n, w.id(), want)
							}
							scraped[w.id()] = true
						}
					}
				}
			}
			if !found {
				t.Errorf("%s: port %q is not a named port of the Services it selects %q", what, ep.Port, svcs)
			}
		}
	}
	for _, oc := range ohs {
		if !scraped[oc.w.id()] {
			t.Errorf("%s: no ServiceMonitor scrapes its metrics", oc.w.id())
		}
	}
}

// kedaRedisStreams are the metadata keys of KEDA's redis-streams scaler.
var kedaRedisStreams = []string{
	"address", "addressFromEnv", "host", "hostFromEnv", "port", "portFromEnv",
	"usernameFromEnv", "passwordFromEnv", "stream", "consumerGroup",
	"pendingEntriesCount", "streamLength", "lagCount", "activationLagCount",
	"enableTLS", "unsafeSsl", "databaseIndex",
}

func checkAutoscaling(t *testing.T, k *kit, ohs []openhqmContainer, f *Facts, mode string) {
	var worker workload
	for _, oc := range ohs {
		if oc.role == roleWorker {
			worker = oc.w
		}
	}
	if worker.kind != "Deployment" {
		t.Fatalf("the worker runs in a %s, want a Deployment", worker.kind)
	}
	if mode != "" && worker.replicas != nil {
		t.Errorf("%s sets replicas; every `kubectl apply` would reset what the autoscaler chose", worker.id())
	}
	wantHPA, wantSO := 0, 0
	switch mode {
	case "hpa":
		wantHPA = 1
	case "keda":
		wantSO = 1
	}
	if len(k.hpas) != wantHPA || len(k.scaledObjects) != wantSO {
		t.Fatalf("%d HorizontalPodAutoscalers and %d ScaledObjects, want %d and %d", len(k.hpas), len(k.scaledObjects), wantHPA, wantSO)
	}

	for name, h := range k.hpas {
		what := "HorizontalPodAutoscaler/" + name
		ref := h.Spec.ScaleTargetRef
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != worker.name {
			t.Errorf("%s: targets %s %s/%s, want apps/v1 Deployment/%s", what, ref.APIVersion, ref.Kind, ref.Name, worker.name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			t.Errorf("%s: minReplicas %v maxReplicas %d", what, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		if len(h.Spec.Metrics) == 0 {
			t.Errorf("%s: no metrics", what)
		}
		for _, m := range h.Spec.Metrics {
			if m.Type != autoscalingv2.ExternalMetricSourceType || m.External == nil {
				t.Errorf("%s: metric of type %s, want External (queue depth)", what, m.Type)
				continue
			}
			if !slices.Contains(metricNames, m.External.Metric.Name) {
				t.Errorf("%s: metric %q is not one openhqm exports", what, m.External.Metric.Name)
			}
			sel := m.External.Metric.Selector
			if sel == nil {
				t.Errorf("%s: metric %s has no selector: every queue would be summed", what, m.External.Metric.Name)
				continue
			}
			if _, ok := f.Queues[sel.MatchLabels["queue"]]; !ok {
				t.Errorf("%s: metric selector queue=%q names no queue of the config", what, sel.MatchLabels["queue"])
			}
		}
	}

	for name, so := range k.scaledObjects {
		what := "ScaledObject/" + name
		ref := so.Spec.ScaleTargetRef
		if (ref.APIVersion != "" && ref.APIVersion != "apps/v1") || (ref.Kind != "" && ref.Kind != "Deployment") || ref.Name != worker.name {
			t.Errorf("%s: targets %s %s/%s, want Deployment/%s", what, ref.APIVersion, ref.Kind, ref.Name, worker.name)
		}
		if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount != 0 {
			t.Errorf("%s: minReplicaCount must be 0 (scale to zero)", what)
		}
		if so.Spec.MaxReplicaCount == nil || *so.Spec.MaxReplicaCount < 1 {
			t.Errorf("%s: maxReplicaCount missing", what)
		}
		if len(so.Spec.Triggers) != 1 {
			t.Fatalf("%s: %d triggers, want 1", what, len(so.Spec.Triggers))
		}
		tr := so.Spec.Triggers[0]
		if tr.Type != "redis-streams" {
			t.Errorf("%s: trigger %q, want redis-streams", what, tr.Type)
		}
		for key := range tr.Metadata {
			if !slices.Contains(kedaRedisStreams, key) {
				t.Errorf("%s: unknown redis-streams metadata %q", what, key)
			}
		}
		matched := false
		for _, q := range f.Queues {
			if q.Stream == tr.Metadata["stream"] && q.Group == tr.Metadata["consumerGroup"] {
				matched = true
			}
		}
		if !matched {
			t.Errorf("%s: stream %q group %q are not a queue of the config %v", what, tr.Metadata["stream"], tr.Metadata["consumerGroup"], f.Queues)
		}
		// Only the group's lag reflects jobs nobody has received yet; pending
		// entries are zero while there are zero workers.
		if tr.Metadata["lagCount"] == "" || tr.Metadata["activationLagCount"] == "" || tr.Metadata["pendingEntriesCount"] != "" {
			t.Errorf("%s: scale-to-zero needs lagCount and activationLagCount, not pendingEntriesCount", what)
		}
		if tr.AuthenticationRef == nil {
			t.Errorf("%s: no authenticationRef", what)
			continue
		}
		ta, ok := k.triggerAuths[tr.AuthenticationRef.Name]
		if !ok {
			t.Errorf("%s: TriggerAuthentication %q is not in the kit", what, tr.AuthenticationRef.Name)
			continue
		}
		var params []string
		for _, r := range ta.Spec.SecretTargetRef {
			params = append(params, r.Parameter)
		}
		_, inMeta := tr.Metadata["address"]
		_, fromEnv := tr.Metadata["addressFromEnv"]
		if !slices.Contains(params, "address") && !inMeta && !fromEnv {
			t.Errorf("%s: no Redis address in the trigger or its TriggerAuthentication (parameters %q)", what, params)
		}
	}
}

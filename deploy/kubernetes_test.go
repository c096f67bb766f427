package deploy

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"
)

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor
// this base uses; decoding is strict, so any other field fails.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path,omitempty"`
			Scheme        string `json:"scheme,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// rendered is the kustomization's output, strictly decoded by kind.
type rendered struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	pdbs        []*policyv1.PodDisruptionBudget
	configMaps  []*corev1.ConfigMap
	netpols     []*networkingv1.NetworkPolicy
	monitors    []*serviceMonitor
	accounts    []*corev1.ServiceAccount
}

const kustomizeDir = "kubernetes"

// decodeStrict decodes JSON into v, failing on unknown or duplicate fields
// (case-sensitive, as the API server's strict field validation does).
func decodeStrict(js []byte, v any) error {
	strict, err := sigsjson.UnmarshalStrict(js, v)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		var msgs []string
		for _, e := range strict {
			msgs = append(msgs, e.Error())
		}
		return fmt.Errorf("%s", strings.Join(msgs, "; "))
	}
	return nil
}

func renderKustomization(t *testing.T) rendered {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), mustAbs(t, kustomizeDir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", kustomizeDir, err)
	}
	var r rendered
	wantAPI := map[string]string{
		"Deployment": "apps/v1", "Service": "v1", "ConfigMap": "v1", "ServiceAccount": "v1",
		"PodDisruptionBudget": "policy/v1", "NetworkPolicy": "networking.k8s.io/v1",
		"ServiceMonitor": "monitoring.coreos.com/v1",
	}
	for _, res := range m.Resources() {
		kind, id := res.GetKind(), res.GetKind()+"/"+res.GetName()
		if api := res.GetApiVersion(); wantAPI[kind] != api {
			t.Errorf("%s: apiVersion %q, kind not expected in this base (known: %v)", id, api, wantAPI)
			continue
		}
		js, err := res.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		switch kind {
		case "Deployment":
			x := &appsv1.Deployment{}
			r.deployments, v = append(r.deployments, x), x
		case "Service":
			x := &corev1.Service{}
			r.services, v = append(r.services, x), x
		case "PodDisruptionBudget":
			x := &policyv1.PodDisruptionBudget{}
			r.pdbs, v = append(r.pdbs, x), x
		case "ConfigMap":
			x := &corev1.ConfigMap{}
			r.configMaps, v = append(r.configMaps, x), x
		case "NetworkPolicy":
			x := &networkingv1.NetworkPolicy{}
			r.netpols, v = append(r.netpols, x), x
		case "ServiceMonitor":
			x := &serviceMonitor{}
			r.monitors, v = append(r.monitors, x), x
		case "ServiceAccount":
			x := &corev1.ServiceAccount{}
			r.accounts, v = append(r.accounts, x), x
		}
		if err := decodeStrict(js, v); err != nil {
			t.Errorf("%s: %v", id, err)
		}
		if ns := res.GetNamespace(); ns != "viogen-alerts" {
			t.Errorf("%s: namespace %q", id, ns)
		}
	}
	return r
}

func TestKustomizeBase(t *testing.T) {
	r := renderKustomization(t)
	if t.Failed() {
		t.FailNow()
	}
	if len(r.deployments) != 2 || len(r.pdbs) != 2 || len(r.services) != 2 || len(r.netpols) != 1 || len(r.monitors) != 1 {
		t.Fatalf("rendered %d Deployments, %d PDBs, %d Services, %d NetworkPolicies, %d ServiceMonitors; want 2, 2, 2, 1, 1",
			len(r.deployments), len(r.pdbs), len(r.services), len(r.netpols), len(r.monitors))
	}
	configMaps := map[string]*corev1.ConfigMap{}
	for _, cm := range r.configMaps {
		configMaps[cm.Name] = cm
	}
	example := readFile(t, filepath.Join(repoRoot, "deploy/config/viogen.yaml"))
	if !bytes.Equal(readFile(t, filepath.Join(kustomizeDir, "config.yaml")), example) {
		t.Error("deploy/kubernetes/config.yaml differs from deploy/config/viogen.yaml: cp deploy/config/viogen.yaml deploy/kubernetes/config.yaml")
	}
	stages := map[string]bool{}
	for _, d := range r.deployments {
		t.Run(d.Name, func(t *testing.T) { checkDeployment(t, d, configMaps, string(example), stages) })
	}
	if !stages["decide"] || !stages["deliver"] {
		t.Errorf("stages run by the Deployments: %v; want decide and deliver apart", stages)
	}
	for _, p := range r.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range r.deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				n++
				if p.Spec.MinAvailable == nil || d.Spec.Replicas == nil || p.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
					t.Errorf("PDB %s: minAvailable %v leaves no disruption for %s's %v replicas", p.Name, p.Spec.MinAvailable, d.Name, d.Spec.Replicas)
				}
			}
		}
		if n != 1 {
			t.Errorf("PDB %s selects %d Deployments; want exactly its own", p.Name, n)
		}
	}
	svcLabels := []labels.Set{}
	for _, s := range r.services {
		svcLabels = append(svcLabels, s.Labels)
		n := 0
		for _, d := range r.deployments {
			if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				n++
				if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Name != "admin" || s.Spec.Ports[0].TargetPort.String() != "admin" {
					t.Errorf("Service %s ports %+v; want the admin port", s.Name, s.Spec.Ports)
				}
			}
		}
		if n != 1 {
			t.Errorf("Service %s selects %d Deployments; want one", s.Name, n)
		}
	}
	// The ServiceMonitor scrapes /metrics on the admin port of every Service.
	sm := r.monitors[0]
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range svcLabels {
		if !sel.Matches(l) {
			t.Errorf("ServiceMonitor does not select Service %s", r.services[i].Name)
		}
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "admin" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v; want port admin, path /metrics", sm.Spec.Endpoints)
	}
	checkNetworkPolicy(t, r.netpols[0], r.deployments)
	checkSecretExample(t, r.deployments)
}

func checkDeployment(t *testing.T, d *appsv1.Deployment, configMaps map[string]*corev1.ConfigMap, example string, stages map[string]bool) {
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("selector %v does not match the pod labels %v", d.Spec.Selector, d.Spec.Template.Labels)
	}
	// run --stages STAGE, and the component label says the same.
	stage := ""
	for i, a := range c.Args {
		if a == "--stages" && i+1 < len(c.Args) {
			stage = c.Args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--stages="); ok {
			stage = v
		}
	}
	if len(c.Args) == 0 || c.Args[0] != "run" || (stage != "decide" && stage != "deliver") {
		t.Errorf("args %v; want run --stages decide|deliver", c.Args)
	}
	if d.Name != "dispatcher-"+stage || d.Spec.Template.Labels["app.kubernetes.io/component"] != stage {
		t.Errorf("Deployment %s runs stage %q with component label %q", d.Name, stage, d.Spec.Template.Labels["app.kubernetes.io/component"])
	}
	stages[stage] = true
	if !strings.HasPrefix(c.Image, "registry.example.org/viogen/dispatcher:") {
		t.Errorf("image %q: the images: transformer did not apply", c.Image)
	}

	env := map[string]corev1.EnvVar{}
	var names []string
	for _, e := range c.Env {
		env[e.Name] = e
		names = append(names, e.Name)
		if e.Value != "" {
			if why := inlinedSecret(e.Name, e.Value); why != "" {
				t.Error(why)
			}
		}
	}
	for _, cm := range configMaps {
		for k, v := range cm.Data {
			if strings.HasPrefix(cm.Name, "dispatcher-env") {
				names = append(names, k)
				if why := inlinedSecret(k, v); why != "" {
					t.Errorf("ConfigMap %s: %s", cm.Name, why)
				}
			}
		}
	}
	checkEnvNames(t, d.Name, names)

	// Probes: liveness /healthz, readiness /readyz, on the admin port that
	// HTTP_ADDR listens on.
	var admin *corev1.ContainerPort
	for i := range c.Ports {
		if c.Ports[i].Name == "admin" {
			admin = &c.Ports[i]
		}
	}
	if admin == nil {
		t.Fatal("no container port named admin")
	}
	if got := env["HTTP_ADDR"].Value; got != fmt.Sprintf(":%d", admin.ContainerPort) {
		t.Errorf("HTTP_ADDR %q but the admin port is %d", got, admin.ContainerPort)
	}
	probe := func(name string, p *corev1.Probe, path string) {
		switch {
		case p == nil || p.HTTPGet == nil:
			t.Errorf("%s probe: none, or not httpGet", name)
		case p.HTTPGet.Path != path:
			t.Errorf("%s probe path %s; want %s", name, p.HTTPGet.Path, path)
		case p.HTTPGet.Port.String() != admin.Name && p.HTTPGet.Port.IntValue() != int(admin.ContainerPort):
			t.Errorf("%s probe port %s; want the admin port", name, p.HTTPGet.Port.String())
		case p.TimeoutSeconds < 2:
			t.Errorf("%s probe timeout %ds; /readyz may take up to 1 s", name, p.TimeoutSeconds)
		}
	}
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")

	// Resources.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[r]
		lim, okLim := c.Resources.Limits[r]
		if !okReq || !okLim || req.Cmp(lim) > 0 {
			t.Errorf("resources %s: request %v, limit %v; want both, request <= limit", r, req.String(), lim.String())
		}
	}

	// Security context, pod and container.
	psc, sc := spec.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	switch {
	case sc == nil:
		t.Fatal("no container securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0:
		t.Error("container may run as root")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("root filesystem is writable")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation is not false")
	case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0:
		t.Errorf("capabilities %+v; want drop ALL, add none", sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("container seccomp profile is not RuntimeDefault")
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("privileged")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("the service account token is mounted; the dispatcher never calls the API")
	}

	// The config: DISPATCHER_CONFIG is where the generated ConfigMap's
	// config.yaml (the example config) is mounted.
	cfgPath := env["DISPATCHER_CONFIG"].Value
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			cm, ok := configMaps[v.ConfigMap.Name]
			if !ok {
				t.Errorf("volume %s names ConfigMap %s, which is not rendered (hash suffix not applied?)", v.Name, v.ConfigMap.Name)
				continue
			}
			file := filepath.Join(m.MountPath, "")
			key := ""
			if m.SubPath != "" {
				for _, it := range v.ConfigMap.Items {
					if it.Path == m.SubPath {
						key = it.Key
					}
				}
				if len(v.ConfigMap.Items) == 0 {
					key = m.SubPath
				}
			} else {
				key = strings.TrimPrefix(cfgPath, m.MountPath+"/")
				file = cfgPath
			}
			if file == cfgPath {
				mounted = true
				if !m.ReadOnly {
					t.Errorf("config mount %s is writable", m.MountPath)
				}
				if cm.Data[key] != example {
					t.Errorf("ConfigMap %s key %q is not the example config", cm.Name, key)
				}
			}
		}
	}
	if cfgPath == "" || !mounted {
		t.Errorf("DISPATCHER_CONFIG %q is not a mounted ConfigMap key", cfgPath)
	}

	// Secrets only by reference, to the Secret the base does not ship.
	refs := 0
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			refs++
			if e.ValueFrom.SecretKeyRef.Name != "dispatcher-secrets" {
				t.Errorf("env %s reads Secret %s", e.Name, e.ValueFrom.SecretKeyRef.Name)
			}
		}
	}
	for _, ef := range c.EnvFrom {
		if ef.SecretRef != nil {
			refs++
		}
	}
	if _, ok := env["REDIS_URL"]; !ok && refs == 0 {
		t.Error("no REDIS_URL and no Secret reference")
	}
}

func checkNetworkPolicy(t *testing.T, np *networkingv1.NetworkPolicy, deps []*appsv1.Deployment) {
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps {
		if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("NetworkPolicy does not select %s", d.Name)
		}
	}
	if len(np.Spec.PolicyTypes) != 2 {
		t.Errorf("policyTypes %v; want Ingress and Egress", np.Spec.PolicyTypes)
	}
	if len(np.Spec.Ingress) != 1 {
		t.Fatalf("%d ingress rules; want one (monitoring -> admin port)", len(np.Spec.Ingress))
	}
	in := np.Spec.Ingress[0]
	if len(in.From) != 1 || in.From[0].NamespaceSelector == nil ||
		in.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" || in.From[0].IPBlock != nil {
		t.Errorf("ingress from %+v; want the monitoring namespace only", in.From)
	}
	if len(in.Ports) != 1 || in.Ports[0].Port == nil || in.Ports[0].Port.IntValue() != 8080 {
		t.Errorf("ingress ports %+v; want the admin port 8080 only", in.Ports)
	}
	egress := map[string]bool{}
	for _, e := range np.Spec.Egress {
		for _, p := range e.Ports {
			egress[fmt.Sprintf("%s/%s", *p.Protocol, p.Port.String())] = true
		}
	}
	for _, want := range []string{"UDP/53", "TCP/53", "TCP/9092", "TCP/6379", "TCP/443"} {
		if !egress[want] {
			t.Errorf("no egress to %s (DNS, Kafka, Redis, HTTPS providers)", want)
		}
	}
}

// checkSecretExample: secret.example.yaml is a valid Secret with synthetic
// values, outside the kustomization, and holds every key the Deployments
// reference.
func checkSecretExample(t *testing.T, deps []*appsv1.Deployment) {
	var kz struct {
		Resources, Components []string
	}
	if err := sigsyaml.Unmarshal(readFile(t, filepath.Join(kustomizeDir, "kustomization.yaml")), &kz); err != nil {
		t.Fatal(err)
	}
	for _, r := range append(kz.Resources, kz.Components...) {
		if strings.Contains(r, "secret") {
			t.Errorf("kustomization lists %s; the Secret is never shipped, only referenced", r)
		}
	}
	js, err := sigsyaml.YAMLToJSON(readFile(t, filepath.Join(kustomizeDir, "secret.example.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	var s corev1.Secret
	if err := decodeStrict(js, &s); err != nil {
		t.Fatalf("secret.example.yaml: %v", err)
	}
	var names []string
	for k, v := range s.StringData {
		names = append(names, k)
		if why := inlinedSecret(k, v); why != "" {
			t.Errorf("secret.example.yaml: %s", why)
		}
	}
	checkEnvNames(t, "secret.example.yaml", names)
	for _, d := range deps {
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
				if _, ok := s.StringData[r.SecretKeyRef.Key]; !ok {
					t.Errorf("%s reads key %s, which secret.example.yaml does not list", d.Name, r.SecretKeyRef.Key)
				}
			}
		}
	}
}

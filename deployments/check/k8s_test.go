package check

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// object is a rendered Kubernetes object: what every kind has, and the
// document to decode the rest from.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	doc yaml.Node
}

// The parts of a Deployment the tests read.
type deployment struct {
	Spec struct {
		Replicas int `yaml:"replicas"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot bool   `yaml:"runAsNonRoot"`
		RunAsUser    *int64 `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
	Volumes    []volume    `yaml:"volumes"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []struct {
		Name string `yaml:"name"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe  *probe `yaml:"readinessProbe"`
	LivenessProbe   *probe `yaml:"livenessProbe"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

type volume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name string `yaml:"name"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName string `yaml:"secretName"`
		Items      []struct {
			Key  string `yaml:"key"`
			Path string `yaml:"path"`
		} `yaml:"items"`
	} `yaml:"secret"`
}

type service struct {
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

// render builds deployments/k8s with kustomize, as kubectl apply -k would.
func render(t *testing.T) []object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(root, "deployments/k8s"))
	if err != nil {
		t.Fatalf("kustomize build deployments/k8s: %v", err)
	}
	out, err := resources.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return splitObjects(t, out)
}

// splitObjects decodes a stream of YAML documents.
func splitObjects(t *testing.T, b []byte) []object {
	t.Helper()
	var objs []object
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var o object
		if err := dec.Decode(&o.doc); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatal(err)
		}
		decodeNode(t, &o.doc, &o)
		objs = append(objs, o)
	}
}

// decode decodes the object's document into v.
func (o object) decode(t *testing.T, v any) {
	t.Helper()
	decodeNode(t, &o.doc, v)
}

func decodeNode(t *testing.T, n *yaml.Node, v any) {
	t.Helper()
	if err := n.Decode(v); err != nil {
		t.Fatal(err)
	}
}

// find is the object of kind named name; it fails the test if none.
func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && (o.Metadata.Name == name || name == "") {
			return o
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return object{}
}

// The edge Deployment runs three edges configured by the ConfigMap's file,
// which the edge takes; probes, ports and the grace period agree with the
// edge's flags; it runs as no root, on a read-only root file system.
func TestKubernetesEdge(t *testing.T) {
	objs, h := render(t), help(t)
	var d deployment
	find(t, objs, "Deployment", "pushfabric-edge").decode(t, &d)
	if d.Spec.Replicas != 3 {
		t.Errorf("replicas %d; want 3", d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	c := edgeContainer(t, pod)
	cfg := mountedConfig(t, objs, pod, c, h)
	ports := containerPorts(t, c, cfg)
	checkProbes(t, c, ports, h.duration(t, cfg, "drain-delay"))
	grace, deadline := time.Duration(pod.TerminationGracePeriodSeconds)*time.Second, h.stopDeadline(t, cfg)
	if grace <= deadline {
		t.Errorf("terminationGracePeriodSeconds %v; want more than drain-delay + drain-timeout + 2 × stop margin = %v", grace, deadline)
	}
	checkSecurity(t, pod, c)
	for _, e := range c.Env {
		if !h.envs[e.Name] {
			t.Errorf("env %s is no variable edge --help names", e.Name)
		}
	}
	checkSecretFiles(t, objs, pod, c, cfg)
}

func edgeContainer(t *testing.T, pod podSpec) container {
	t.Helper()
	if len(pod.Containers) != 1 || !strings.HasPrefix(pod.Containers[0].Image, "pushfabric") {
		t.Fatalf("containers %+v; want one, the pushfabric image", pod.Containers)
	}
	return pod.Containers[0]
}

// mountedConfig is the edge config the container's --config names, read
// from the ConfigMap mounted there, and checked with readEdgeConfig.
func mountedConfig(t *testing.T, objs []object, pod podSpec, c container, h edgeHelp) map[string]any {
	t.Helper()
	if len(c.Args) != 2 || c.Args[0] != "--config" {
		t.Fatalf("args %v; want --config FILE", c.Args)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	vol, key := mountOf(t, pod, c, c.Args[1])
	if vol.ConfigMap == nil {
		t.Fatalf("%s is not mounted from a ConfigMap", c.Args[1])
	}
	find(t, objs, "ConfigMap", vol.ConfigMap.Name).decode(t, &cm)
	file := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(file, []byte(cm.Data[key]), 0o600); err != nil {
		t.Fatal(err)
	}
	return readEdgeConfig(t, h, file)
}

// mountOf is the volume a file in the container comes from, and the file's
// name in it.
func mountOf(t *testing.T, pod podSpec, c container, file string) (volume, string) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		key, ok := "", false
		if m.SubPath != "" && m.MountPath == file {
			key, ok = m.SubPath, true
		} else if m.SubPath == "" && path.Dir(file) == m.MountPath {
			key, ok = path.Base(file), true
		}
		if !ok {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name {
				return v, key
			}
		}
	}
	t.Fatalf("no volume is mounted at %s", file)
	return volume{}, ""
}

// containerPorts checks the container's named ports against the config's
// listeners and the image's EXPOSE, and returns them by name.
func containerPorts(t *testing.T, c container, cfg map[string]any) map[string]string {
	t.Helper()
	ports := map[string]string{}
	for _, p := range c.Ports {
		ports[p.Name] = strconv.Itoa(p.ContainerPort)
	}
	got := []string{ports["ws"], ports["tcp"], ports["admin"]}
	if want := listenPorts(t, cfg); !slices.Equal(got, want) {
		t.Errorf("container ports ws, tcp, admin %v; the config listens on %v", got, want)
	}
	if want := exposedPorts(t); !slices.Equal(got, want) {
		t.Errorf("container ports %v; the image exposes %v", got, want)
	}
	return ports
}

// checkProbes: readiness on /readyz and liveness on /healthz, both on the
// admin port; readiness notices a draining node within its drain delay.
func checkProbes(t *testing.T, c container, ports map[string]string, drainDelay time.Duration) {
	t.Helper()
	for _, p := range []struct {
		probe *probe
		path  string
	}{{c.ReadinessProbe, "/readyz"}, {c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet.Path != p.path || (p.probe.HTTPGet.Port != "admin" && p.probe.HTTPGet.Port != ports["admin"]) {
			t.Errorf("probe %+v; want GET %s on the admin port", p.probe, p.path)
		}
	}
	if r := c.ReadinessProbe; r != nil {
		if notice := time.Duration(r.PeriodSeconds*max(r.FailureThreshold, 1)) * time.Second; notice > drainDelay {
			t.Errorf("readiness notices a draining node after %v; want at most drain-delay %v", notice, drainDelay)
		}
	}
}

func checkSecurity(t *testing.T, pod podSpec, c container) {
	t.Helper()
	if sc := pod.SecurityContext; !sc.RunAsNonRoot || sc.RunAsUser == nil || strconv.FormatInt(*sc.RunAsUser, 10) != imageUser(t) {
		t.Errorf("pod securityContext %+v; want runAsNonRoot as the image's user, %s", sc, imageUser(t))
	}
	if sc := c.SecurityContext; !sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container securityContext %+v; want a read-only root file system, no privilege escalation", sc)
	}
}

// checkSecretFiles: each file the config names comes from a Secret that
// the base does not hold (no secret is committed) and that
// secrets.example.yaml shows, with the same key.
func checkSecretFiles(t *testing.T, objs []object, pod podSpec, c container, cfg map[string]any) {
	t.Helper()
	examples := splitObjects(t, mustRead(t, filepath.Join(root, "deployments/k8s/secrets.example.yaml")))
	for _, flag := range []string{"nats-nkey", "nats-creds", "jwt-public-key-file", "jwt-secret-file"} {
		file, ok := cfg[flag].(string)
		if !ok {
			continue
		}
		vol, key := mountOf(t, pod, c, file)
		if vol.Secret == nil {
			t.Errorf("--%s %s is not mounted from a Secret", flag, file)
			continue
		}
		for _, o := range objs {
			if o.Kind == "Secret" {
				t.Errorf("the base holds Secret %s: secrets are made, not committed", o.Metadata.Name)
			}
		}
		var example struct {
			StringData map[string]string `yaml:"stringData"`
		}
		find(t, examples, "Secret", vol.Secret.SecretName).decode(t, &example)
		if _, ok := example.StringData[secretKey(vol, key)]; !ok {
			t.Errorf("secrets.example.yaml's %s has no key %s", vol.Secret.SecretName, secretKey(vol, key))
		}
	}
}

// secretKey is the Secret's key behind the file name in its volume.
func secretKey(v volume, file string) string {
	for _, it := range v.Secret.Items {
		if it.Path == file {
			return it.Key
		}
	}
	return file
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The Services select the edge pods, the clients' one on the client ports
// only and the admin one on the admin port, which the ServiceMonitor
// scrapes; the PodDisruptionBudget lets one edge go at a time.
func TestKubernetesServices(t *testing.T) {
	objs := render(t)
	var d deployment
	find(t, objs, "Deployment", "pushfabric-edge").decode(t, &d)
	podLabels := d.Spec.Template.Metadata.Labels
	clients := checkService(t, objs, "pushfabric-edge", podLabels, "ws", "tcp")
	admin := checkService(t, objs, "pushfabric-edge-admin", podLabels, "admin")
	checkServiceMonitor(t, objs, clients, admin)
	var pdb struct {
		Spec struct {
			MaxUnavailable int `yaml:"maxUnavailable"`
			Selector       struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
		} `yaml:"spec"`
	}
	find(t, objs, "PodDisruptionBudget", "pushfabric-edge").decode(t, &pdb)
	if pdb.Spec.MaxUnavailable != 1 || !selects(pdb.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("PodDisruptionBudget %+v; want maxUnavailable 1 of the edge pods", pdb.Spec)
	}
}

// checkService: the Service selects the pods and targets the named
// container ports, no others. It returns the Service's object.
func checkService(t *testing.T, objs []object, name string, podLabels map[string]string, targets ...string) object {
	t.Helper()
	o := find(t, objs, "Service", name)
	var s service
	o.decode(t, &s)
	var got []string
	for _, p := range s.Spec.Ports {
		got = append(got, p.TargetPort)
	}
	if !slices.Equal(got, targets) || !selects(s.Spec.Selector, podLabels) {
		t.Errorf("Service %s targets %v, selects %v; want %v of the pods labelled %v", name, got, s.Spec.Selector, targets, podLabels)
	}
	return o
}

func checkServiceMonitor(t *testing.T, objs []object, clients, admin object) {
	t.Helper()
	o := find(t, objs, "ServiceMonitor", "pushfabric-edge")
	var sm struct {
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Endpoints []struct {
				Port string `yaml:"port"`
				Path string `yaml:"path"`
			} `yaml:"endpoints"`
		} `yaml:"spec"`
	}
	o.decode(t, &sm)
	sel := sm.Spec.Selector.MatchLabels
	if o.APIVersion != "monitoring.coreos.com/v1" || !selects(sel, admin.Metadata.Labels) || selects(sel, clients.Metadata.Labels) {
		t.Errorf("ServiceMonitor %s selects %v; want the admin Service only", o.APIVersion, sel)
	}
	if e := sm.Spec.Endpoints; len(e) != 1 || e[0].Port != "admin" || e[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v; want /metrics on port admin", e)
	}
}

// selects says whether a selector matches labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

package check

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The parts of the NATS chart's values (nats-io/k8s, chart nats 1.x) the
// chart reads for the cluster, JetStream and the extra config files.
type natsValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool `yaml:"enabled"`
			Replicas int  `yaml:"replicas"`
		} `yaml:"cluster"`
		JetStream struct {
			Enabled   bool `yaml:"enabled"`
			FileStore struct {
				Enabled bool `yaml:"enabled"`
				PVC     struct {
					Enabled bool   `yaml:"enabled"`
					Size    string `yaml:"size"`
				} `yaml:"pvc"`
			} `yaml:"fileStore"`
		} `yaml:"jetstream"`
		Merge map[string]any `yaml:"merge"`
	} `yaml:"config"`
	Container struct {
		Image struct {
			Tag string `yaml:"tag"`
		} `yaml:"image"`
	} `yaml:"container"`
}

var valuesPath = filepath.Join(root, "deployments/k8s/nats-values.yaml")

// The values run three servers in a cluster with JetStream on file
// storage, the nats-server go.mod pins, and the users of deployments/nats:
// the config includes push.conf, and the install command the file gives
// puts it, and every file it includes, in the chart's ConfigMap.
func TestHelmValues(t *testing.T) {
	var v natsValues
	readYAML(t, valuesPath, &v)
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 {
		t.Errorf("config.cluster %+v; want enabled, 3 replicas", c.Cluster)
	}
	if js := c.JetStream; !js.Enabled || !js.FileStore.Enabled || !js.FileStore.PVC.Enabled || js.FileStore.PVC.Size == "" {
		t.Errorf("config.jetstream %+v; want enabled on file storage in a PVC of a size", js)
	}
	if want := goModVersion(t, "github.com/nats-io/nats-server/v2"); !strings.HasPrefix(v.Container.Image.Tag, want) {
		t.Errorf("container.image.tag %q; want %s, the server the tests run", v.Container.Image.Tag, want)
	}
	files := setFiles(t)
	var included []string
	for k, f := range c.Merge {
		if strings.HasSuffix(k, "$include") {
			included = append(included, f.(string))
		}
	}
	if !slices.Contains(included, "push.conf") {
		t.Errorf("config.merge includes %v; want push.conf", included)
	}
	checkIncludes(t, included, files)
	checkRelease(t)
}

// setFiles is the install command's --set-file arguments: file name in
// the chart's ConfigMap → path in the repository.
func setFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	re := regexp.MustCompile(`--set-file 'configMap\.merge\.data\.([^=]+)=([^']+)'`)
	for _, m := range re.FindAllStringSubmatch(string(mustRead(t, valuesPath)), -1) {
		files[strings.ReplaceAll(m[1], `\.`, ".")] = filepath.Join(root, m[2])
	}
	return files
}

// checkIncludes: each included file is put in the ConfigMap from a file
// of the repository, and so is each file that one includes.
func checkIncludes(t *testing.T, included []string, files map[string]string) {
	t.Helper()
	seen := map[string]bool{}
	for len(included) > 0 {
		name := included[0]
		included = included[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		path, ok := files[name]
		if !ok {
			t.Errorf("%s is included but the install command does not --set-file it", name)
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("--set-file %s: %v", name, err)
			continue
		}
		for _, m := range regexp.MustCompile(`(?m)^\s*include\s+"?([^"\s;]+)`).FindAllStringSubmatch(string(b), -1) {
			included = append(included, m[1])
		}
	}
}

// checkRelease: the edges' NATS URL names the client Service of the
// release the install command makes.
func checkRelease(t *testing.T) {
	t.Helper()
	m := regexp.MustCompile(`helm upgrade --install (\S+) nats/nats`).FindStringSubmatch(string(mustRead(t, valuesPath)))
	if m == nil {
		t.Fatal("nats-values.yaml gives no helm upgrade --install command")
	}
	var cfg map[string]any
	readYAML(t, filepath.Join(root, "deployments/k8s/edge.yaml"), &cfg)
	for _, u := range toAnys(cfg["nats-url"]) {
		if p, err := url.Parse(u.(string)); err != nil || p.Hostname() != m[1] {
			t.Errorf("deployments/k8s/edge.yaml nats-url %v; want the release's Service, nats://%s:4222", u, m[1])
		}
	}
}

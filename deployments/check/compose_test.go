package check

import (
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/conf"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// composeDir is deployments/compose, where compose.yaml's paths start.
var composeDir = filepath.Join(root, "deployments/compose")

// The parts of compose.yaml the tests read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Networks map[string]struct {
		IPAM struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build struct {
		Context string `yaml:"context"`
	} `yaml:"build"`
	User            string            `yaml:"user"`
	Command         []string          `yaml:"command"`
	Environment     map[string]string `yaml:"environment"`
	Volumes         []string          `yaml:"volumes"`
	Ports           []string          `yaml:"ports"`
	Secrets         []string          `yaml:"secrets"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
}

// readCompose reads compose.yaml, with ${VAR:-default} as compose would
// read it with nothing set.
func readCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	readYAML(t, filepath.Join(composeDir, "compose.yaml"), &c)
	for name, s := range c.Services {
		s.User, s.Image = interpolate(s.User), interpolate(s.Image)
		c.Services[name] = s
	}
	return c
}

var composeVar = regexp.MustCompile(`\$\{[A-Z0-9_]+(?::?-([^}]*))?\}`)

// interpolate is s with each ${VAR} replaced by its default, if any.
func interpolate(s string) string {
	return composeVar.ReplaceAllString(s, "$1")
}

// mounts is a service's bind mounts: container path → host path. Every
// host path must exist: compose.yaml mounts files of the repository only.
func mounts(t *testing.T, name string, s composeService) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if !strings.HasPrefix(parts[0], ".") {
			continue // a named volume
		}
		host := filepath.Join(composeDir, parts[0])
		if _, err := os.Stat(host); err != nil {
			t.Errorf("%s mounts %s, which is not in the repository: %v", name, parts[0], err)
		}
		m[parts[1]] = host
	}
	return m
}

// servicesNamed is the names of compose's services that start with prefix.
func servicesNamed(c composeFile, prefix string) []string {
	var names []string
	for name := range c.Services {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// The three edges run the repository's image as no root, each configured
// by a mounted file the edge takes, listening where the image exposes and
// HAProxy sends, trusting PROXY headers from the compose network, with
// their secrets from compose secrets and time to drain when stopped.
func TestComposeEdges(t *testing.T) {
	c, h := readCompose(t), help(t)
	edges := servicesNamed(c, "edge")
	if !slices.Equal(edges, []string{"edge1", "edge2", "edge3"}) {
		t.Fatalf("edge services %v; want edge1, edge2, edge3", edges)
	}
	nodes := map[string]bool{}
	for _, name := range edges {
		cfg := composeEdgeConfig(t, c, name, h)
		nodes[cfg["node"].(string)] = true
		checkComposeEdge(t, c, name, cfg, h)
	}
	if len(nodes) != len(edges) {
		t.Errorf("node names %v; want one per edge", nodes)
	}
}

// composeEdgeConfig is the config file an edge service's --config names.
func composeEdgeConfig(t *testing.T, c composeFile, name string, h edgeHelp) map[string]any {
	t.Helper()
	s := c.Services[name]
	if len(s.Command) != 2 || s.Command[0] != "--config" {
		t.Fatalf("%s command %v; want --config FILE", name, s.Command)
	}
	file, ok := mounts(t, name, s)[s.Command[1]]
	if !ok {
		t.Fatalf("%s: nothing mounted at %s", name, s.Command[1])
	}
	return readEdgeConfig(t, h, file)
}

func checkComposeEdge(t *testing.T, c composeFile, name string, cfg map[string]any, h edgeHelp) {
	t.Helper()
	s := c.Services[name]
	if _, err := os.Stat(filepath.Join(composeDir, s.Build.Context, "Dockerfile")); err != nil {
		t.Errorf("%s builds %q: %v", name, s.Build.Context, err)
	}
	if s.User != imageUser(t) {
		t.Errorf("%s runs as %q unless told otherwise; want the image's user, %s", name, s.User, imageUser(t))
	}
	if got, want := listenPorts(t, cfg), exposedPorts(t); !slices.Equal(got, want) {
		t.Errorf("%s listens on %v; the image exposes %v", name, got, want)
	}
	checkNATSURLs(t, c, name, cfg)
	checkProxyProtocol(t, c, name, cfg)
	checkComposeSecrets(t, c, name, cfg)
	grace, err := time.ParseDuration(s.StopGracePeriod)
	if deadline := h.stopDeadline(t, cfg); err != nil || grace <= deadline {
		t.Errorf("%s stop_grace_period %q; want more than drain-delay + drain-timeout + 2 × stop margin = %v", name, s.StopGracePeriod, deadline)
	}
}

// checkNATSURLs: the edge connects to the NATS services, on their port.
func checkNATSURLs(t *testing.T, c composeFile, name string, cfg map[string]any) {
	t.Helper()
	urls, _ := cfg["nats-url"].([]any)
	var hosts []string
	for _, u := range urls {
		p, err := url.Parse(u.(string))
		if err != nil || p.Port() != "4222" {
			t.Errorf("%s: nats-url %v; want nats://<service>:4222", name, u)
			continue
		}
		hosts = append(hosts, p.Hostname())
	}
	if want := servicesNamed(c, "nats"); !slices.Equal(hosts, want) {
		t.Errorf("%s connects to %v; want every NATS service, %v", name, hosts, want)
	}
}

// checkProxyProtocol: the edge trusts PROXY headers from the compose
// network, where HAProxy's connections come from.
func checkProxyProtocol(t *testing.T, c composeFile, name string, cfg map[string]any) {
	t.Helper()
	var subnets []any
	for _, cfg := range c.Networks["default"].IPAM.Config {
		subnets = append(subnets, cfg.Subnet)
	}
	if got := cfg["proxy-protocol"]; !slices.Equal(toAnys(got), subnets) || len(subnets) == 0 {
		t.Errorf("%s proxy-protocol %v; want the compose network's subnets %v", name, got, subnets)
	}
	for _, s := range subnets {
		if _, _, err := net.ParseCIDR(s.(string)); err != nil {
			t.Errorf("network subnet %v: %v", s, err)
		}
	}
}

func toAnys(v any) []any {
	l, _ := v.([]any)
	return l
}

// checkComposeSecrets: each file the config names is a compose secret of
// the service, read from the repository's secrets/ (made there, never
// committed).
func checkComposeSecrets(t *testing.T, c composeFile, name string, cfg map[string]any) {
	t.Helper()
	for _, flag := range []string{"nats-nkey", "nats-creds", "jwt-secret-file", "jwt-public-key-file"} {
		file, ok := cfg[flag].(string)
		if !ok {
			continue
		}
		secret, ok := strings.CutPrefix(file, "/run/secrets/")
		if !ok || !slices.Contains(c.Services[name].Secrets, secret) {
			t.Errorf("%s --%s %s; want one of its secrets, /run/secrets/<name>", name, flag, file)
			continue
		}
		src := filepath.Clean(filepath.Join(composeDir, c.Secrets[secret].File))
		if filepath.Dir(src) != filepath.Clean(filepath.Join(root, "secrets")) {
			t.Errorf("secret %s is %s; want a file in the repository's secrets/", secret, c.Secrets[secret].File)
		}
	}
}

// HAProxy's config is the shipped one, its variables are set to the edge
// services, and it sends each kind of client to the port the edges listen
// on for it and checks them on their admin port.
func TestComposeHAProxy(t *testing.T) {
	c, h := readCompose(t), help(t)
	lb := c.Services["haproxy"]
	cfgPath, ok := mounts(t, "haproxy", lb)["/usr/local/etc/haproxy/haproxy.cfg"]
	if !ok || filepath.Clean(cfgPath) != filepath.Clean(filepath.Join(root, "deployments/haproxy/haproxy.cfg")) {
		t.Fatalf("haproxy mounts %v; want deployments/haproxy/haproxy.cfg as its config", lb.Volumes)
	}
	text := string(mustRead(t, cfgPath))
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)(-[^}]*)?\}`).FindAllStringSubmatch(text, -1) {
		if _, set := lb.Environment[m[1]]; !set && m[2] == "" {
			t.Errorf("haproxy.cfg reads ${%s}, which compose does not set", m[1])
		}
	}
	edgeCfg := composeEdgeConfig(t, c, "edge1", h)
	want := map[string]string{"edges-websocket": port(t, edgeCfg["ws-listen"]), "edges-tcp": port(t, edgeCfg["tcp-listen"])}
	for backend, servers := range haproxyServers(t, text, lb.Environment) {
		if !slices.Equal(servers, []string{"edge1:" + want[backend], "edge2:" + want[backend], "edge3:" + want[backend]}) {
			t.Errorf("backend %s sends to %v; want edge1-3 on port %s", backend, servers, want[backend])
		}
		delete(want, backend)
	}
	if len(want) > 0 {
		t.Errorf("haproxy.cfg has no backends %v", want)
	}
	if !strings.Contains(text, "check port "+port(t, edgeCfg["admin-listen"])) {
		t.Errorf("haproxy.cfg does not check the edges' admin port %s", port(t, edgeCfg["admin-listen"]))
	}
	if !slices.Equal(lb.Ports, []string{"8080:8080", "8081:8081"}) {
		t.Errorf("haproxy publishes %v; want its frontends, 8080 and 8081", lb.Ports)
	}
}

// haproxyServers is each backend's servers, host:port, with the
// environment's values for ${VAR}.
func haproxyServers(t *testing.T, text string, env map[string]string) map[string][]string {
	t.Helper()
	servers := map[string][]string{}
	backend := ""
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "backend":
			backend = f[1]
		case len(f) >= 3 && f[0] == "server" && backend != "":
			addr := os.Expand(strings.Trim(f[2], `"`), func(v string) string { return env[v] })
			servers[backend] = append(servers[backend], addr)
		}
	}
	return servers
}

// Prometheus scrapes every edge's admin port and has the shipped alerts;
// Grafana has it as its data source and the shipped dashboard.
func TestComposeMonitoring(t *testing.T) {
	c, h := readCompose(t), help(t)
	adminPort := port(t, composeEdgeConfig(t, c, "edge1", h)["admin-listen"])
	prom := mounts(t, "prometheus", c.Services["prometheus"])
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, prom["/etc/prometheus/prometheus.yml"], &cfg)
	if len(cfg.ScrapeConfigs) != 1 || len(cfg.ScrapeConfigs[0].StaticConfigs) != 1 ||
		!slices.Equal(cfg.ScrapeConfigs[0].StaticConfigs[0].Targets, []string{"edge1:" + adminPort, "edge2:" + adminPort, "edge3:" + adminPort}) {
		t.Errorf("prometheus scrapes %+v; want edge1-3 on port %s", cfg.ScrapeConfigs, adminPort)
	}
	for _, rules := range cfg.RuleFiles {
		if prom[filepath.Join("/etc/prometheus", rules)] != filepath.Join(root, "deployments/prometheus", rules) {
			t.Errorf("rule file %s is not deployments/prometheus's, mounted beside prometheus.yml", rules)
		}
	}
	checkGrafana(t, c)
}

func checkGrafana(t *testing.T, c composeFile) {
	t.Helper()
	m := mounts(t, "grafana", c.Services["grafana"])
	var ds struct {
		Datasources []struct {
			Type, URL string
		} `yaml:"datasources"`
	}
	var dash struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, m["/etc/grafana/provisioning/datasources/pushfabric.yaml"], &ds)
	readYAML(t, m["/etc/grafana/provisioning/dashboards/pushfabric.yaml"], &dash)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("grafana data sources %+v; want the prometheus service", ds.Datasources)
	}
	if len(dash.Providers) != 1 {
		t.Fatalf("grafana dashboard providers %+v; want one", dash.Providers)
	}
	json := m[dash.Providers[0].Options.Path+"/pushfabric.json"]
	if filepath.Clean(json) != filepath.Clean(filepath.Join(root, "deployments/grafana/pushfabric.json")) {
		t.Errorf("grafana's dashboard folder %s has no deployments/grafana/pushfabric.json (mounts %v)", dash.Providers[0].Options.Path, m)
	}
	checkJSON(t, json)
}

func checkJSON(t *testing.T, path string) {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(mustRead(t, path), &v); err != nil {
		t.Errorf("%s: %v", path, err)
	}
}

// The three NATS servers run the nats-server go.mod pins, each named as
// its service, routed to the others, with the permissioned config of
// deployments/nats as nats-server reads it from the files compose mounts.
func TestComposeNATS(t *testing.T) {
	c := readCompose(t)
	names := servicesNamed(c, "nats")
	if !slices.Equal(names, []string{"nats1", "nats2", "nats3"}) {
		t.Fatalf("NATS services %v; want nats1, nats2, nats3", names)
	}
	for _, name := range names {
		s := c.Services[name]
		if want := "nats:" + goModVersion(t, "github.com/nats-io/nats-server/v2"); s.Image != want {
			t.Errorf("%s image %s; want %s, the server the tests run", name, s.Image, want)
		}
		cfg := natsConfig(t, name, s)
		checkNATSConfig(t, name, cfg, names)
	}
}

// natsConfig is the config a NATS service's server reads: its mounts laid
// out as in the container, parsed by nats-server's parser in the service's
// environment.
func natsConfig(t *testing.T, name string, s composeService) map[string]any {
	t.Helper()
	if len(s.Command) != 2 || s.Command[0] != "--config" {
		t.Fatalf("%s command %v; want --config FILE", name, s.Command)
	}
	dir := t.TempDir()
	for in, host := range mounts(t, name, s) {
		dst := filepath.Join(dir, in)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, mustRead(t, host), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range s.Environment {
		t.Setenv(k, v)
	}
	withKeys(t, filepath.Join(dir, "/etc/nats/keys.conf"))
	file := filepath.Join(dir, s.Command[1])
	if _, err := server.ProcessConfigFile(file); err != nil {
		t.Errorf("%s: nats-server refuses its config: %v", name, err)
	}
	cfg, err := conf.ParseFile(file)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cfg
}

// withKeys puts real public keys where keys.conf has placeholders, as
// make nats-keys does.
func withKeys(t *testing.T, path string) {
	t.Helper()
	placeholder := regexp.MustCompile(`"U[A-Z_]*PLACEHOLDER[A-Z_]*"`)
	keys := placeholder.ReplaceAllStringFunc(string(mustRead(t, path)), func(string) string {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		return `"` + pub + `"`
	})
	if err := os.WriteFile(path, []byte(keys), 0o600); err != nil {
		t.Fatal(err)
	}
}

func checkNATSConfig(t *testing.T, name string, cfg map[string]any, servers []string) {
	t.Helper()
	if cfg["server_name"] != name || cfg["listen"] != "0.0.0.0:4222" {
		t.Errorf("%s: server_name %v, listen %v; want %s on 0.0.0.0:4222", name, cfg["server_name"], cfg["listen"], name)
	}
	cluster, _ := cfg["cluster"].(map[string]any)
	var routes []string
	for _, r := range toAnys(cluster["routes"]) {
		u, err := url.Parse(r.(string))
		if err != nil || u.Port() != port(t, cluster["listen"]) {
			t.Errorf("%s: route %v; want nats-route://<service>:<cluster port>", name, r)
			continue
		}
		routes = append(routes, u.Hostname())
	}
	if !slices.Equal(routes, servers) {
		t.Errorf("%s routes to %v; want %v", name, routes, servers)
	}
	js, _ := cfg["jetstream"].(map[string]any)
	accounts, _ := cfg["accounts"].(map[string]any)
	if js["store_dir"] != "/data" || accounts["PUSH"] == nil {
		t.Errorf("%s: jetstream %v, accounts %v; want the store in the /data volume, the PUSH account of push.conf", name, js, accounts)
	}
}

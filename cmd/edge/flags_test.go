package main

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A bad --ws-allowed-origins value, on the command line or in its
// environment variable, is refused like any flag's invalid value: the error
// is one line naming the flag, not the config field behind it.
func TestBadAllowedOriginNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  string
	}{
		{name: "flag", args: []string{"--ws-allowed-origins", "https://ok.example, ftp://x"}},
		{name: "environment", env: "ftp://x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("PUSHFABRIC_WS_ALLOWED_ORIGINS", tc.env)
			}
			var stderr strings.Builder
			_, code, ok := parse(tc.args, io.Discard, &stderr)
			msg := stderr.String()
			if ok || code != 2 || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "--ws-allowed-origins") ||
				!strings.Contains(msg, `"ftp://x" is not an origin`) || strings.Contains(msg, "WSAllowedOrigins") {
				t.Fatalf("parse: exit %d, %q; want one line naming --ws-allowed-origins and saying ftp://x is not an origin", code, msg)
			}
		})
	}
}

// The flags' defaults are the binary's (binaryDefaults), and every flag lands in
// the config.
func TestFlagsReachTheConfig(t *testing.T) {
	o, _, ok := parse([]string{"--queue-len", "7", "--nats-url", "nats://a:4222,nats://b:4222", "--node", "n9",
		"--ws-allowed-origins", "https://a.example,", "--rate", "2.5", "--dlq-replicas", "1"}, io.Discard, io.Discard)
	if !ok {
		t.Fatal("parse refused the flags")
	}
	c := o.cfg
	if c.Edge.QueueLen != 7 || len(c.Bus.URLs) != 2 || c.Identity.Node != "n9" || len(c.Edge.WSAllowedOrigins) != 1 || c.Edge.Rate != 2.5 {
		t.Fatalf("config %+v", c)
	}
	o, _, ok = parse(nil, io.Discard, io.Discard)
	if want := binaryDefaults(); !ok || !reflect.DeepEqual(o.cfg, want) {
		t.Fatalf("with no flags the config is\n%+v\nwant binaryDefaults()\n%+v", o.cfg, want)
	}
}

// Each flag's config tag names a field of app.Config, and the flag sets
// that field and nothing else.
func TestEveryFlagSetsItsField(t *testing.T) {
	var f edgeFlags
	flags := f.configFlags()
	if len(flags) < 45 {
		t.Fatalf("%d flags with a config tag", len(flags))
	}
	for _, cf := range flags {
		t.Run(cf.flag, func(t *testing.T) {
			var f edgeFlags // every flag at its default
			p, err := parser(&f, io.Discard, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Parse(nil); err != nil {
				t.Fatal(err)
			}
			for _, g := range f.configFlags() {
				if g.name == cf.name {
					set(t, g.value)
				}
			}
			got := binaryDefaults()
			f.apply(&got)
			want := binaryDefaults()
			set(t, field(&want, cf.path))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s set\n%+v\nwant only %s changed:\n%+v", cf.flag, got, cf.path, want)
			}
		})
	}
}

// set gives v a value that is no field's default.
func set(t *testing.T, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x7")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Float64:
		v.SetFloat(7)
	case reflect.Slice:
		v.Set(reflect.ValueOf([]string{"x7"}))
	default:
		t.Fatalf("no test value for a %s", v.Type())
	}
}

// A number out of range is refused naming its flag, as the user typed it,
// never the app.Config field behind it: --queue-len, not Edge.QueueLen.
func TestRangeErrorsNameTheFlag(t *testing.T) {
	var f edgeFlags
	for _, cf := range f.configFlags() {
		bad := map[reflect.Kind]string{reflect.Int: "-1", reflect.Int64: "-1", reflect.Float64: "-1"}[cf.value.Kind()]
		if cf.value.Type() == reflect.TypeFor[time.Duration]() {
			bad = "-1s"
		}
		if bad == "" {
			continue
		}
		var stderr strings.Builder
		_, code, ok := parse([]string{cf.flag + "=" + bad}, io.Discard, &stderr)
		msg := stderr.String()
		if ok || code != 2 || !strings.Contains(msg, cf.flag+" must") || strings.Contains(msg, cf.path) {
			t.Errorf("%s=%s: exit %d, %q; want it refused naming %s, not %s", cf.flag, bad, code, msg, cf.flag, cf.path)
		}
	}
}

// The demo page is off unless asked for, on the command line, in the
// environment or in the config file.
func TestDemoIsOffUnlessAsked(t *testing.T) {
	if o, msg := parseArgs(); o == nil || o.cfg.Demo {
		t.Fatalf("no flags: %v (%s); want the demo off", o != nil && o.cfg.Demo, msg)
	}
	for name, args := range map[string][]string{
		"flag": {"--demo"},
		"file": {"--config", writeConfig(t, "demo: true\n")},
	} {
		if o, msg := parseArgs(args...); o == nil || !o.cfg.Demo {
			t.Errorf("%s: %s; want the demo on", name, msg)
		}
	}
	t.Setenv("PUSHFABRIC_DEMO", "true")
	if o, msg := parseArgs(); o == nil || !o.cfg.Demo {
		t.Errorf("PUSHFABRIC_DEMO=true: %s; want the demo on", msg)
	}
}

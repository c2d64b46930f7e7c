package app

import (
	"strings"
	"testing"
)

func TestExposure(t *testing.T) {
	embedded := func(listen string) Config {
		c := DefaultConfig()
		c.Bus.Embedded.Listen = listen
		return c
	}
	withUser := embedded("0.0.0.0:4222")
	withUser.Bus.User, withUser.Bus.PasswordFile = "edge", "pw"
	allowedNATS := embedded(":4222")
	allowedNATS.AllowOpenNATS = true
	external := embedded("0.0.0.0:4222")
	external.Bus.URLs = []string{"nats://n1:4222"}
	pprofOn := func(admin string, allow bool) Config {
		c := DefaultConfig()
		c.Pprof, c.AdminListen, c.AllowOpenPprof = true, admin, allow
		return c
	}
	for _, c := range []struct {
		what    string
		cfg     Config
		refused string // the flag the error names; "" for none
		warned  string // the warning logged; "" for none
	}{
		{"the defaults", DefaultConfig(), "", ""},
		{"embedded on localhost", embedded("localhost:4222"), "", ""},
		{"embedded on every interface", embedded("0.0.0.0:4222"), "--allow-open-nats", ""},
		{"embedded with no host", embedded(":4222"), "--allow-open-nats", ""},
		{"embedded off loopback with a user", withUser, "", ""},
		{"embedded open, allowed", allowedNATS, "", openNATSWarning},
		{"URLs given: no embedded server", external, "", ""},
		{"profiles on loopback", pprofOn("[::1]:9090", false), "", ""},
		{"profiles off loopback", pprofOn("10.0.0.1:9090", false), "--allow-open-pprof", ""},
		{"profiles off loopback, allowed", pprofOn(":9090", true), "", openPprofWarning},
		{"no admin listener", pprofOn("", false), "", ""},
	} {
		open, err := exposure(c.cfg)
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%s: %v; want it allowed", c.what, err)
		case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("%s: error %v; want one naming %s", c.what, err, c.refused)
		}
		var warned string
		if len(open) == 1 {
			warned = open[0].warning
		}
		if len(open) > 1 || warned != c.warned {
			t.Errorf("%s: open listeners %v; want the warning %q", c.what, open, c.warned)
		}
	}
}

package tests

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pushfabric/pushfabric/cmd/edge/app"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/tests/natstest"
	"github.com/pushfabric/pushfabric/token"
)

// Issue 16's "done when": a user with two browser tabs (two tabs of one
// real Chromium, the JavaScript client in each, on one node) and a phone
// (the Go client over TCP, on another node of a three-server cluster) gets
// one push on all three from one publish; the producer hears three members
// on two nodes.
func TestTwoTabsAndAPhone(t *testing.T) {
	exe := chromiumPath(t)
	servers := natstest.Cluster(t, 3)
	nodes := clusterEdges(t, servers[:2], func(i int, cfg *app.Config) { cfg.Demo = i == 0 })
	page := "http://" + wsAddr(nodes[0]) + "/demo/"
	tab1 := openPage(t, exe, page)
	tab2, closeTab := chromedp.NewContext(tab1) // a second tab of the same browser
	t.Cleanup(closeTab)
	if err := chromedp.Do(tab2, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	tabs := map[string]context.Context{"alice-tab1": tab1, "alice-tab2": tab2}
	for session, ctx := range tabs {
		tok, err := token.MintGroups(secret, session, []string{"user-alice"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if node := evalPage[string](t, ctx, fmt.Sprintf("%s(%q)", pageSetup, tok)); node != "edge1" {
			t.Fatalf("%s on node %q; want edge1", session, node)
		}
	}
	phone := dialGroups(t, nodes[1].tcp(), "alice-phone", "user-alice")
	waitForSubs(t, servers, "push.group.user-alice.high", 2)

	p := newProducer(t, natstest.Connect(t, servers[2]), "")
	a, err := p.PushGroup(timeout(t), "user-alice", push.High, []byte("hello, every device"), producer.WithID("all3"))
	if err != nil || a.Members != 3 || len(a.Nodes) != 2 {
		t.Fatalf("group push: %+v, %v; want 3 members on 2 nodes", a, err)
	}
	if f := recv(t, phone); f.ID != "all3" || string(f.Payload) != "hello, every device" {
		t.Fatalf("phone got %s %q", f.ID, f.Payload)
	}
	for session, ctx := range tabs {
		v := waitView(t, ctx, session+" shows the push", func(v pageView) bool { return len(v.Pushes) > 0 })
		if len(v.Pushes) != 1 || v.Pushes[0].ID != "all3" || v.Pushes[0].Text != "hello, every device" {
			t.Fatalf("%s shows %+v; want the one push", session, v.Pushes)
		}
	}
}

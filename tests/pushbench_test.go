package tests

import (
	"encoding/json"
	"errors"
	"os/exec"
	"testing"
)

// pushbench load, briefly: both runs account for every push sent, and the
// figures it reports are there.
func TestPushbenchLoadAccountsForEveryPush(t *testing.T) {
	out := pushbench(t, "load", "--sessions", "20", "--duration", "1s", "--rate", "2000", "--low", "0.25", "--json")
	type phase struct {
		Name      string            `json:"name"`
		Sent      uint64            `json:"sent"`
		Delivered uint64            `json:"delivered"`
		Dead      map[string]uint64 `json:"dead_letters"`
		Missing   int64             `json:"missing"`
		PerSecond float64           `json:"delivered_per_second"`
		Latency   struct {
			P50 int64 `json:"p50_us"`
			Max int64 `json:"max_us"`
		} `json:"latency"`
		EdgeCPU float64 `json:"edge_cpu_seconds"`
	}
	var res struct {
		Raw    *phase  `json:"raw_nats"`
		Fabric *phase  `json:"pushfabric"`
		Ratio  float64 `json:"throughput_ratio"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Raw == nil || res.Fabric == nil {
		t.Fatalf("want both runs:\n%s", out)
	}
	for _, p := range []*phase{res.Raw, res.Fabric} {
		var dead uint64
		for _, n := range p.Dead {
			dead += n
		}
		if p.Sent == 0 || p.Sent != p.Delivered+dead || p.Missing != 0 { // how many: the machine's speed
			t.Errorf("%s: sent %d, delivered %d, dead %v, missing %d: want sent = delivered + dead", p.Name, p.Sent, p.Delivered, p.Dead, p.Missing)
		}
		if p.PerSecond <= 0 || p.Latency.P50 <= 0 || p.Latency.Max < p.Latency.P50 {
			t.Errorf("%s: figures missing: %+v", p.Name, p)
		}
	}
	if res.Fabric.EdgeCPU <= 0 || res.Ratio <= 0 {
		t.Errorf("edge CPU %v, ratio %v", res.Fabric.EdgeCPU, res.Ratio)
	}
}

// pushbench load --ack received, briefly: a phase of Push-Ack: received
// pushes beside the acked one, every push delivered and confirmed (the
// producer's ack wait is reported), none dead.
func TestPushbenchLoadReceipts(t *testing.T) {
	out := pushbench(t, "load", "--sessions", "20", "--duration", "1s", "--rate", "1000", "--publish", "acked", "--ack", "received",
		"--no-baseline", "--json")
	type phase struct {
		Name      string            `json:"name"`
		Sent      uint64            `json:"sent"`
		Delivered uint64            `json:"delivered"`
		Dead      map[string]uint64 `json:"dead_letters"`
		Ack       *struct {
			P50 int64 `json:"p50_us"`
		} `json:"ack_latency"`
	}
	var res struct {
		Fabric   *phase `json:"pushfabric"`
		Receipts *phase `json:"receipts"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Fabric == nil || res.Receipts == nil {
		t.Fatalf("want the acked and the receipts phase:\n%s", out)
	}
	for _, p := range []*phase{res.Fabric, res.Receipts} {
		// How many a phase sends is the machine's speed, not the test's to
		// judge: one second on a busy machine may send few.
		if p.Sent == 0 || p.Sent != p.Delivered || len(p.Dead) > 0 || p.Ack == nil || p.Ack.P50 <= 0 {
			t.Errorf("%s: sent %d, delivered %d, dead %v, ack wait %+v: want all delivered, none dead, the wait reported", p.Name, p.Sent, p.Delivered, p.Dead, p.Ack)
		}
	}
}

// pushbench scale, briefly: every session connects, the edge holds them
// all, each is closed with shutdown when the edge drains, and every push
// published just before is delivered or dead-lettered (shutdown, or closed
// when it reached a session already gone).
func TestPushbenchScale(t *testing.T) {
	out := pushbench(t, "scale", "--sessions", "300", "--client-procs", "2", "--queued", "3", "--json")
	var res struct {
		Connected  int            `json:"connected"`
		PerSession float64        `json:"edge_rss_bytes_per_session"`
		Drain      float64        `json:"drain_seconds"`
		Closed     map[string]int `json:"close_reasons"`
		Queued     struct {
			Sent      uint64            `json:"sent"`
			Delivered uint64            `json:"delivered"`
			Dead      map[string]uint64 `json:"dead_letters"`
			Missing   int64             `json:"missing"`
		} `json:"queued"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Connected != 300 || res.Drain <= 0 || res.Closed["shutdown"] != 300 || len(res.Closed) != 1 {
		t.Fatalf("pushbench scale: %s", out)
	}
	q := res.Queued
	var dead uint64
	for _, n := range q.Dead {
		dead += n
	}
	if q.Sent != 900 || q.Sent != q.Delivered+dead || q.Missing != 0 {
		t.Fatalf("pushes sent before the drain: %+v; want 900, each delivered or dead-lettered", q)
	}
}

// pushbench runs the built pushbench with args and returns what it printed.
func pushbench(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(binary(t, "pushbench"), args...).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("pushbench %s: %v\n%s%s", args[0], err, out, ee.Stderr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pushbench soak, briefly: sessions churn over two edges by every move
// (closed, killed, taken over, a slow reader's burst, away) under pushes
// acknowledged written; every push is accounted for, none lost on the
// edges, and both edges come back to their idle baseline.
func TestPushbenchSoak(t *testing.T) {
	out := pushbench(t, "soak", "--duration", "8s", "--sessions", "40", "--rate", "100", "--lifetime", "3s",
		"--sample", "4s", "--burst", "100", "--json")
	var res struct {
		Published uint64            `json:"published"`
		Written   uint64            `json:"written"`
		Dead      map[string]uint64 `json:"dead"`
		Unacked   uint64            `json:"unacknowledged"`
		Moves     map[string]uint64 `json:"moves"`
		Samples   []struct {
			Edge     string  `json:"edge"`
			Sessions float64 `json:"sessions"`
			RSS      float64 `json:"rss_bytes"`
		} `json:"samples"`
		Accounted bool `json:"accounted"`
		Baselined bool `json:"back_to_baseline"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var dead uint64
	for _, n := range res.Dead {
		dead += n
	}
	if !res.Accounted || !res.Baselined || res.Published == 0 || res.Published != res.Written+dead+res.Unacked {
		t.Fatalf("pushbench soak: %s", out)
	}
	if len(res.Samples) < 2 || res.Samples[0].RSS <= 0 || res.Moves["taken_over"] == 0 || res.Moves["killed"] == 0 {
		t.Fatalf("pushbench soak: samples or moves missing: %s", out)
	}
}

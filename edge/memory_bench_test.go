package edge_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/internal/testcert"
	"github.com/pushfabric/pushfabric/tests/idle"
)

// The idle-memory benchmark keeps the client ends of its connections in a
// child process (this test binary again), so the figures are the server's
// alone.
const (
	holdAddrEnv  = "PUSHFABRIC_TEST_HOLD_ADDR"
	holdCountEnv = "PUSHFABRIC_TEST_HOLD_COUNT"
	holdCAEnv    = "PUSHFABRIC_TEST_HOLD_CA" // the CA file to trust over TLS
	idleConnsEnv = "PUSHFABRIC_IDLE_CONNS"   // how many connections
)

// BenchmarkIdleMemory reports the server's memory per idle connection over
// real loopback sockets: RSS, Go heap in use and goroutine stacks, each
// divided by the number of connections, PUSHFABRIC_IDLE_CONNS (up to
// ~19,000 under a 20,000 open-file limit; `make bench-idle`). Without it
// the benchmark is skipped. Run it with -benchtime=1x: one iteration is one
// full measurement. tls and wss are tcp and ws over TLS: a *tls.Conn keeps
// a read buffer where a plain socket is waited on without one.
func BenchmarkIdleMemory(b *testing.B) {
	conns, err := strconv.Atoi(os.Getenv(idleConnsEnv))
	if err != nil || conns <= 0 {
		b.Skip("set " + idleConnsEnv + " to the number of idle connections to measure")
	}
	for _, transport := range []string{"tcp", "ws", "tls", "wss"} {
		b.Run(fmt.Sprintf("%s/conns=%d", transport, conns), func(b *testing.B) {
			for range b.N {
				measureIdle(b, transport, conns)
			}
		})
	}
}

func measureIdle(b *testing.B, transport string, conns int) {
	var o edge.Options
	var caFile string
	if transport == "tls" || transport == "wss" {
		o.TLS, caFile = benchTLS(b)
	}
	cfg := edge.DefaultConfig()
	cfg.ConnectRate = 0 // the connections are opened all at once: not what is measured
	nd := startNode(b, cfg, o)
	addr := map[string]string{"tcp": nd.tcp, "ws": nd.ws, "tls": "tls://" + nd.tcpAddr, "wss": "wss://" + nd.wsAddr + "/"}[transport]
	before := idle.ReadMem()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdAddrEnv+"="+addr, holdCountEnv+"="+strconv.Itoa(conns), holdCAEnv+"="+caFile)
	release, err := idle.Spawn(cmd)
	if err != nil {
		b.Fatal(err)
	}
	if got := nd.srv.Len(); got != conns {
		b.Fatalf("%d connections held; want %d", got, conns)
	}
	per := idle.PerConn(before, idle.ReadMem(), conns)
	b.ReportMetric(per.RSS, "rss-B/conn")
	b.ReportMetric(per.Heap, "heap-B/conn")
	b.ReportMetric(per.Stack, "stack-B/conn")
	b.ReportMetric(per.Goroutines, "goroutines/conn")
	if err := release(); err != nil {
		b.Fatalf("client process: %v", err)
	}
	nd.stop(b)
}

// benchTLS is a server TLS configuration with a certificate for
// 127.0.0.1, and the file of the CA that signed it.
func benchTLS(b *testing.B) (*tls.Config, string) {
	ca, err := testcert.NewCA()
	if err != nil {
		b.Fatal(err)
	}
	p, err := ca.Leaf("127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	cert, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		b.Fatal(err)
	}
	caFile := filepath.Join(b.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		b.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, caFile
}

// holdClients is the child process of the idle-memory benchmark.
func holdClients() int {
	n, _ := strconv.Atoi(os.Getenv(holdCountEnv))
	var tc *tls.Config
	if caFile := os.Getenv(holdCAEnv); caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		tc = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return idle.HoldTLS(os.Getenv(holdAddrEnv), n, true, tc)
}

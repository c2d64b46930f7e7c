package producer_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// benchNATSEnv, set in a child process of the test binary, makes it a
// nats-server with a subscriber that takes every push, and nothing else:
// BenchmarkPublish runs both out of its process, so that what it counts
// per push is the producer's alone.
const benchNATSEnv = "PUSHFABRIC_BENCH_NATS"

func TestMain(m *testing.M) {
	if os.Getenv(benchNATSEnv) != "" {
		if err := serveBenchNATS(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// serveBenchNATS starts the server and the subscriber, writes the
// server's URL on out, and runs until in ends.
func serveBenchNATS(in io.Reader, out io.Writer) error {
	dir, err := os.MkdirTemp("", "producer-bench-nats-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		return err
	}
	go s.Start()
	defer s.Shutdown()
	if !s.ReadyForConnections(30 * time.Second) {
		return fmt.Errorf("nats-server did not start")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	sub, err := nc.Subscribe("push.>", func(*nats.Msg) {})
	if err != nil {
		return err
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, s.ClientURL())
	_, _ = io.Copy(io.Discard, in)
	return nil
}

// benchNATS starts the child process and returns its server's URL; it
// stops when the benchmark ends.
func benchNATS(b *testing.B) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchNATSEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	url, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("the benchmark's nats-server: %v", err)
	}
	return url[:len(url)-1]
}

package client_test

import (
	"context"
	"errors"
	"log"

	"github.com/pushfabric/pushfabric/edge/client"
)

// A client that comes back: a fresh token for each connect, a line for
// each reconnect, and pushes until a reason not to reconnect.
func ExampleConnect() {
	freshToken := func(ctx context.Context) (string, error) { return "a JWT from your auth service", nil }
	s, err := client.Connect(context.Background(), "ws://127.0.0.1:8080/", client.Options{}, client.ReconnectOptions{
		Token: freshToken,
		OnState: func(st client.State) {
			if st.Kind == client.StateConnected && st.Err != nil {
				log.Printf("reconnected to node %s after %v", st.Node, st.Err)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	for {
		f, err := s.Recv(context.Background())
		var closed *client.CloseError
		if errors.As(err, &closed) {
			log.Fatalf("stopped: %s (%s)", closed.Reason, closed.Reason.Meaning())
		}
		if err != nil {
			log.Fatal(err)
		}
		log.Printf("push %s: %s", f.ID, f.Payload)
	}
}

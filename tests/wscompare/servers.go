package main

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	coderws "github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/gorilla/websocket"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/push"
)

var message = make([]byte, msgSize)

// pushfabric: the edge itself (gobwas/ws upgrade on the raw connection, a
// reader that waits for readability without a buffer, writes coalesced by
// the shared flusher).
type pushfabricServer struct {
	srv *edge.Server
	ln  net.Listener
}

func startPushfabric() (server, error) {
	blast := func(c *edge.Conn) error {
		rest, ok := strings.CutPrefix(c.Session(), "blast-")
		if !ok {
			return nil
		}
		n, _ := strconv.Atoi(rest)
		go func() {
			e := edge.Envelope{Frame: edge.Frame{Payload: message[:msgSize-wire6]}}
			for range n {
				if c.Push(context.Background(), push.High, e) != nil {
					return
				}
			}
		}()
		return nil
	}
	srv, err := edge.NewServer(edge.Options{Config: edge.DefaultConfig(), Auth: edge.DevAuth{}, Hooks: edge.Hooks{OnConnect: blast}})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(context.Background()); err != nil {
		return nil, err
	}
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	go srv.ServeWebSocket(ln)
	return &pushfabricServer{srv, ln}, nil
}

// wire6 is the frame header of a push with no id and no content type.
const wire6 = 6

func (p *pushfabricServer) url() string { return "ws://" + p.ln.Addr().String() + "/" }
func (p *pushfabricServer) conns() int  { return p.srv.Len() }
func (p *pushfabricServer) close()      { p.srv.Shutdown(context.Background()) }

// gobwas: the library on its own, the way its README suggests: upgrade the
// raw connection, then one goroutine per connection reading with wsutil
// and one write call per message.
type gobwasServer struct {
	ln   net.Listener
	open atomic.Int64
}

func startGobwas() (server, error) {
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	s := &gobwasServer{ln: ln}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(nc)
		}
	}()
	return s, nil
}

func (s *gobwasServer) serve(nc net.Conn) {
	var n int
	u := ws.Upgrader{OnRequest: func(uri []byte) error { n = blastCount(string(uri)); return nil }}
	if _, err := u.Upgrade(nc); err != nil {
		nc.Close()
		return
	}
	s.open.Add(1)
	defer s.open.Add(-1)
	defer nc.Close()
	run(n, func() error { return wsutil.WriteServerBinary(nc, message) },
		func() error { _, _, err := wsutil.ReadClientData(nc); return err })
}

// run is a connection's life in every library server here: write it n
// messages, then read until it goes.
func run(n int, write, read func() error) {
	for range n {
		if write() != nil {
			return
		}
	}
	for read() == nil {
	}
}

func (s *gobwasServer) url() string { return "ws://" + s.ln.Addr().String() + "/" }
func (s *gobwasServer) conns() int  { return int(s.open.Load()) }
func (s *gobwasServer) close()      { s.ln.Close() }

// gorilla: small buffers, and the handler returns after the upgrade (the
// cheapest way to hold a gorilla connection); a goroutine per connection
// reads; one WriteMessage per message.
func startGorilla() (server, error) {
	up := websocket.Upgrader{ReadBufferSize: 512, WriteBufferSize: 512}
	return startHTTP(func(w http.ResponseWriter, r *http.Request) (libConn, error) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return libConn{}, err
		}
		return libConn{
			write: func() error { return c.WriteMessage(websocket.BinaryMessage, message) },
			read:  func() error { _, _, err := c.NextReader(); return err },
			close: func() { c.Close() },
		}, nil
	})
}

// coder: coder/websocket with the handler returning after Accept; a
// goroutine per connection reads; one Write per message.
func startCoder() (server, error) {
	return startHTTP(func(w http.ResponseWriter, r *http.Request) (libConn, error) {
		c, err := coderws.Accept(w, r, &coderws.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return libConn{}, err
		}
		ctx := context.Background()
		return libConn{
			write: func() error { return c.Write(ctx, coderws.MessageBinary, message) },
			read:  func() error { _, _, err := c.Reader(ctx); return err },
			close: func() { c.CloseNow() },
		}, nil
	})
}

// libConn is what a net/http based server needs of a library's connection.
type libConn struct {
	write, read func() error
	close       func()
}

// startHTTP serves accept's connections: each gets a goroutine that blasts
// what the client asked for, then reads until it goes.
func startHTTP(accept func(http.ResponseWriter, *http.Request) (libConn, error)) (server, error) {
	var open atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := accept(w, r)
		if err != nil {
			return
		}
		open.Add(1)
		n := blastCount(r.URL.RawQuery)
		go func() {
			defer open.Add(-1)
			defer c.close()
			run(n, c.write, c.read)
		}()
	})
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return &httpServer{ln: ln, srv: srv, count: func() int { return int(open.Load()) }}, nil
}

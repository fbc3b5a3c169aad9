// A stand-in for Hubble Relay's gRPC server, for microseg's telemetry tests: grpc-go's grpc.NewServer,
// as the relay builds it, with a keepalive enforcement policy whose MinTime the test scales down
// (grpc-go's default is 5 minutes). It serves observer.Observer/GetFlows as a stream that stays open
// and quiet (what a filtered stream or a quiet cluster looks like) and reports on standard output, one
// line each: "listening PORT", "accept" per TCP connection, "ping" per HTTP/2 PING the client sends
// (not its ACKs) and "goaway CODE DEBUG" per GOAWAY the server sends.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/keepalive"
)

var outMu sync.Mutex

func report(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

// rawCodec passes message bytes through: the stream never decodes the request and sends no message.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

var _ encoding.Codec = rawCodec{}

// frameScanner follows the HTTP/2 frames of one direction of a connection.
type frameScanner struct {
	skipPreface int
	buf         []byte
	onFrame     func(typ, flags byte, payload []byte)
}

func (s *frameScanner) feed(p []byte) {
	if s.skipPreface > 0 {
		n := min(s.skipPreface, len(p))
		s.skipPreface -= n
		p = p[n:]
	}
	s.buf = append(s.buf, p...)
	for len(s.buf) >= 9 {
		length := int(s.buf[0])<<16 | int(s.buf[1])<<8 | int(s.buf[2])
		if len(s.buf) < 9+length {
			return
		}
		s.onFrame(s.buf[3], s.buf[4], s.buf[9:9+length])
		s.buf = s.buf[9+length:]
	}
}

type sniffConn struct {
	net.Conn
	in, out *frameScanner
	wmu     sync.Mutex
}

func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.feed(p[:n])
	return n, err
}

func (c *sniffConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	c.out.feed(p)
	c.wmu.Unlock()
	return c.Conn.Write(p)
}

type sniffListener struct{ net.Listener }

func (l sniffListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	report("accept")
	return &sniffConn{
		Conn: conn,
		in: &frameScanner{skipPreface: 24, onFrame: func(typ, flags byte, _ []byte) {
			if typ == 0x6 && flags&0x1 == 0 {
				report("ping")
			}
		}},
		out: &frameScanner{onFrame: func(typ, _ byte, payload []byte) {
			if typ == 0x7 && len(payload) >= 8 {
				report("goaway %d %s", binary.BigEndian.Uint32(payload[4:8]), string(payload[8:]))
			}
		}},
	}, nil
}

func main() {
	minTime := flag.Duration("min-time", 5*time.Minute, "keepalive enforcement MinTime")
	flag.Parse()

	server := grpc.NewServer(
		grpc.ForceServerCodec(rawCodec{}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: *minTime}),
	)
	server.RegisterService(&grpc.ServiceDesc{
		ServiceName: "observer.Observer",
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{
			StreamName:    "GetFlows",
			ServerStreams: true,
			Handler: func(_ any, stream grpc.ServerStream) error {
				var req []byte
				if err := stream.RecvMsg(&req); err != nil {
					return err
				}
				<-stream.Context().Done()
				return nil
			},
		}},
	}, struct{}{})

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	report("listening %d", lis.Addr().(*net.TCPAddr).Port)
	if err := server.Serve(sniffListener{lis}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

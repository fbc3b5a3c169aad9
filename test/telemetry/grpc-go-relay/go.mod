// Test-only stand-in for Hubble Relay's grpc-go server (test/telemetry/grpc-go-relay.test.ts).
module microseg.test/telemetry/grpcgorelay

go 1.26.0

require google.golang.org/grpc v1.82.1

require (
	golang.org/x/net v0.53.0 // indirect
	golang.org/x/sys v0.43.0 // indirect
	golang.org/x/text v0.36.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260414002931-afd174a4e478 // indirect
	google.golang.org/protobuf v1.36.11 // indirect
)

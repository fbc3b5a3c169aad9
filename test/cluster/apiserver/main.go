// Command k8s-testbin is a multi-call binary holding the pieces of a
// Kubernetes control plane that the microseg integration tests run:
//
//	k8s-testbin kube-apiserver [flags]   the real kube-apiserver command
//	k8s-testbin etcd [flags]             a single-member etcd (embedded server)
//	k8s-testbin kubectl [args]           the real kubectl command
//	k8s-testbin certs --dir D            a throw-away PKI for the control plane
//	k8s-testbin client-cert ...          a client certificate signed by that CA
//	k8s-testbin etcd-compact ...         compact etcd history up to the current revision
//
// When the binary is invoked through a link named kube-apiserver, etcd or
// kubectl, the name selects the command and all arguments are passed through.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if os.Getenv("MICROSEG_DIE_WITH_PARENT") == "1" {
		dieWithParent()
	}
	name := strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe")
	args := os.Args[1:]
	if _, ok := commands[name]; !ok {
		if len(args) == 0 {
			usage()
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	run, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "k8s-testbin: unknown command %q\n", name)
		usage()
		os.Exit(2)
	}
	os.Exit(run(name, args))
}

var commands = map[string]func(name string, args []string) int{
	"kube-apiserver": runAPIServer,
	"etcd":           runEtcd,
	"kubectl":        runKubectl,
	"certs":          runCerts,
	"client-cert":    runClientCert,
	"etcd-compact":   runCompact,
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: k8s-testbin kube-apiserver|etcd|kubectl|certs|client-cert|etcd-compact [args...]")
}

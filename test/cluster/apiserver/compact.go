package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// runCompact compacts the etcd key-value history up to the current revision,
// so that every older resourceVersion becomes "too old" (410 Gone) for the
// kube-apiserver once its watch cache no longer covers it.
func runCompact(name string, args []string) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	endpoint := fs.String("endpoint", "", "etcd client URL (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *endpoint == "" {
		fmt.Fprintln(os.Stderr, "etcd-compact: --endpoint is required")
		return 2
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{*endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd-compact: %v\n", err)
		return 1
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "compact-probe")
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd-compact: %v\n", err)
		return 1
	}
	rev := resp.Header.Revision
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		fmt.Fprintf(os.Stderr, "etcd-compact: %v\n", err)
		return 1
	}
	fmt.Println(rev)
	return 0
}

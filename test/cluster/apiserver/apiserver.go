package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func runAPIServer(name string, args []string) int {
	cmd := app.NewAPIServerCommand()
	cmd.Use = name
	cmd.SetArgs(args)
	os.Args = append([]string{name}, args...)
	return cli.Run(cmd)
}

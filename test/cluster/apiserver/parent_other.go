//go:build !linux

package main

// dieWithParent is a no-op outside Linux; the harness stops its processes itself.
func dieWithParent() {}

//go:build flexgate_e2e

package main

// The binary the end-to-end tests build (go build -tags flexgate_e2e)
// serves a Flex ApiInstance written with port 0 on a port the kernel
// picks, so that the tests never take a fixed port. The binary users build
// refuses port 0: a gateway's clients must know its ports.
func init() { loadOptions.EphemeralPorts = true }

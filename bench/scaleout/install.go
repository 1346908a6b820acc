package main

import "github.com/flexgate/flexgate/bench/apt"

// tools are the programs the run needs, with the Debian package that
// provides each. Installing redis-server may start its system service where
// an init system runs; the harness never talks to it, only to the server it
// starts itself on a port it picked.
var tools = []apt.Tool{
	{Bin: "wrk", Pkg: "wrk"},
	{Bin: "redis-server", Pkg: "redis-server"},
	{Bin: "redis-cli", Pkg: "redis-tools"},
}

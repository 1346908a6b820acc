// Command render fills one of bench/peers' config templates, for scripts
// that run a peer outside the harness (bench/profile/evloop.sh):
//
//	go run ./bench/peers/render -listen 127.0.0.1:18100 -upstream 127.0.0.1:18101 -dir DIR nginx.conf >DIR/nginx.conf
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/flexgate/flexgate/bench/peers"
)

// needs names, for the templates that use more than the addresses and the
// directory, the flags they need set: a template filled without them
// would be a broken config.
var needs = map[string][]string{
	peers.NginxTLS:            {"cert", "key"},
	peers.NginxChain:          {"rate", "client-id", "client-secret"},
	peers.CaddyChain:          {"client-id", "client-secret"},
	peers.TraefikChainDynamic: {"rate", "client-id", "client-secret"},
	peers.NginxLB:             {"upstreams"},
	peers.HAProxyLB:           {"upstreams"},
}

func main() {
	var p peers.Params
	flag.StringVar(&p.Listen, "listen", "127.0.0.1:8080", "host:port the proxy binds")
	flag.StringVar(&p.Upstream, "upstream", "127.0.0.1:8081", "host:port of the origin")
	flag.StringVar(&p.Dir, "dir", os.TempDir(), "directory for the proxy's pid file, logs and buffers")
	flag.IntVar(&p.NoFile, "nofile", 4096, "open-file limit")
	flag.IntVar(&p.WorkerConnections, "worker-connections", 4096, "connections per nginx worker")
	flag.IntVar(&p.MaxConn, "maxconn", 4096, "HAProxy's connection limit")
	flag.StringVar(&p.CertFile, "cert", "", "PEM certificate (TLS templates)")
	flag.StringVar(&p.KeyFile, "key", "", "PEM key (TLS templates)")
	flag.IntVar(&p.RatePerSecond, "rate", 0, "rate limit per second (chain templates)")
	flag.StringVar(&p.ClientID, "client-id", "", "the one client the chain templates admit")
	flag.StringVar(&p.ClientSecret, "client-secret", "", "its secret")
	upstreams := flag.String("upstreams", "", "comma-separated host:port of the origins (balancing templates)")
	flag.Parse()
	if *upstreams != "" {
		p.Upstreams = strings.Split(*upstreams, ",")
	}
	if flag.NArg() != 1 {
		fmt.Fprintf(os.Stderr, "usage: render [flags] TEMPLATE (one of %v)\n", peers.Names)
		os.Exit(2)
	}
	host, _, err := net.SplitHostPort(p.Listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "render: -listen:", err)
		os.Exit(2)
	}
	p.Host = host
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, n := range needs[flag.Arg(0)] {
		if !set[n] {
			fmt.Fprintf(os.Stderr, "render: %s needs -%s\n", flag.Arg(0), n)
			os.Exit(2)
		}
	}
	out, err := peers.Render(flag.Arg(0), p)
	if err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
	_, _ = os.Stdout.Write(out)
}

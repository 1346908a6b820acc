// Command upstream is the fast origin server the benchmark harness puts
// behind every proxy: a fasthttp server whose own cost is small next to any
// proxy's, so that the proxies' differences show.
//
// It answers:
//
//	/small        a ~100-byte JSON body (the default for any other path)
//	/large        a 1 KiB JSON body
//	/introspect   an RFC 7662 introspection answer that says the token is
//	              active, for flexgate's token-introspection policy
//	/jwks         the JWK set of the file given with -jwks, for flexgate's
//	              jwt-validation policy
//
// It prints one line, "listening <addr>", once the socket is bound, so a
// harness can pass -listen 127.0.0.1:0 and read the real port.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"runtime"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0 keeps the Go default)")
	jwks := flag.String("jwks", "", "a JWK set file to serve at /jwks")
	flag.Parse()
	if *jwks != "" {
		b, err := os.ReadFile(*jwks)
		if err != nil {
			log.Fatalf("upstream: %v", err)
		}
		JWKSBody = b
	}
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}

	ln, err := net.Listen("tcp4", *listen)
	if err != nil {
		log.Fatalf("upstream: cannot listen on %s: %v (pick another address with -listen)", *listen, err)
	}
	srv := &fasthttp.Server{
		Handler: Handler,
		Name:    "bench-upstream",
		// The handler sets its own Content-Type; the default would be
		// written and then overwritten on every response.
		NoDefaultContentType: true,
		ReadBufferSize:       8 << 10,
		Concurrency:          1 << 20,
	}
	fmt.Fprintf(os.Stdout, "listening %s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil {
		log.Fatalf("upstream: serve: %v", err)
	}
}

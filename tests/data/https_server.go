// An HTTPS server of Go's standard library (crypto/tls: no OpenSSL): it answers "TARGET\n".
// Usage: https_server CERT KEY; says "listening on 127.0.0.1:PORT".
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s\n", r.URL.RequestURI())
	})
	srv := &http.Server{Handler: handler}
	fmt.Fprintln(os.Stderr, srv.ServeTLS(ln, os.Args[1], os.Args[2]))
	os.Exit(1)
}

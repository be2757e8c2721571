// A TCP relay as Go programs write them: io.Copy between two *net.TCPConn, which Go carries out
// with splice(2) through a pipe, both ways (net/splice_linux.go). Usage: splice_relay LISTEN
// TARGET; it prints "listening on ADDR" once it accepts connections.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go relay(c.(*net.TCPConn), os.Args[2])
	}
}

func relay(client *net.TCPConn, target string) {
	s, err := net.Dial("tcp", target)
	if err != nil {
		client.Close()
		return
	}
	server := s.(*net.TCPConn)
	done := make(chan struct{})
	go func() {
		io.Copy(server, client)
		server.CloseWrite()
		close(done)
	}()
	io.Copy(client, server)
	client.CloseWrite()
	<-done
	client.Close()
	server.Close()
}

package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// body is what the backend answers: small, like an API response.
var body = []byte(`{"service":"bench","ok":true}` + "\n")

// runBackend serves a fixed small HTTP response on the -http address until
// ctx ends. Idle keep-alive connections are kept (no idle timeout
// below 10 minutes), so the idle test's connections stay open.
func runBackend(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	addr := fs.String("http", "", "listen address (required)")
	_ = fs.Parse(args)
	if *addr == "" {
		return fmt.Errorf("-http is required")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	srv := &http.Server{Handler: h, IdleTimeout: 10 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		_ = srv.Close()
		return nil
	}
}

// runIdle opens -n connections to -addr, proves each is carried end to end
// with one keep-alive GET, then holds them all idle and prints
// "ready <n>" on stdout. It exits when stdin closes, -hold passes, or ctx
// ends. Failed connections are counted and reported, not retried.
func runIdle(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	addr := fs.String("addr", "", "address to connect to (required)")
	n := fs.Int("n", 10000, "connections")
	par := fs.Int("parallel", 64, "connections opened at once")
	hold := fs.Duration("hold", 2*time.Minute, "longest time to hold the connections")
	_ = fs.Parse(args)
	if *addr == "" {
		return fmt.Errorf("-addr is required")
	}
	conns := make([]net.Conn, *n)
	var failed atomic.Int64
	var firstErr atomic.Value
	next := atomic.Int64{}
	start := time.Now()
	var wg sync.WaitGroup
	for range *par {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < *n; i = int(next.Add(1)) - 1 {
				c, err := idleConn(*addr)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	fmt.Printf("ready %d failed %d in %.1fs\n", int64(*n)-failed.Load(), failed.Load(), time.Since(start).Seconds())
	if err, ok := firstErr.Load().(error); ok {
		fmt.Fprintf(os.Stderr, "gwbench idle: first error: %v\n", err)
	}
	stdinClosed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stdinClosed) }()
	select {
	case <-ctx.Done():
	case <-stdinClosed:
	case <-time.After(*hold):
	}
	return nil
}

// idleConn dials addr and makes one keep-alive request on the connection.
func idleConn(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = errors.New(resp.Status)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

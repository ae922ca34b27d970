package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Nothing hangs: every verb that talks to etcd, a federator, a gateway or
// a TLS endpoint, run as the built binary against an address that refuses,
// one that drops SYNs (a black hole) and one that accepts and stays
// silent, exits non-zero within its timeout with one error line naming
// the endpoint.

// hangsTimeout is the timeout every verb is given; hangsMargin what the
// process may take beyond it (start-up, a loaded machine).
const (
	hangsTimeout = time.Second
	hangsMargin  = 4 * time.Second
)

func hangsRefused(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// hangsBlackhole listens with a backlog of 0, never accepts, and fills the
// accept queue: the kernel then drops further SYNs, so connecting hangs.
func hangsBlackhole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, syscall.Listen(fd, 0))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	for range 8 { // bounded: the queue holds one or two
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	t.Fatalf("accept queue of %s never filled", addr)
	return ""
}

// hangsSilent accepts connections and never sends a byte.
func hangsSilent(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String()
}

// hangsBinary builds the causeway binary once for the test.
func hangsBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "causeway")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// hangsRun runs the binary, killed after guard; it returns stderr, the
// exit code and how long it took.
func hangsRun(t *testing.T, bin string, args ...string) (string, int, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangsTimeout+hangsMargin+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	require.NoError(t, ctx.Err(), "causeway %s hung: killed after %s", strings.Join(args, " "), elapsed)
	var exit *exec.ExitError
	code := 0
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return stderr.String(), code, elapsed
}

func TestNothingHangs(t *testing.T) {
	bin := hangsBinary(t)
	dir := t.TempDir()
	// Real admin credentials, so the admin verbs get as far as the network.
	ca, adm := filepath.Join(dir, "ca"), filepath.Join(dir, "admin")
	for _, args := range [][]string{
		{"certs", "init", "--cluster", "east", "--out", ca},
		{"certs", "admin", "--ca-dir", ca, "--out", adm},
	} {
		stderr, code, _ := hangsRun(t, bin, args...)
		require.Zero(t, code, stderr)
	}
	timeout := hangsTimeout.String()
	admin := func(verb ...string) func(addr string) []string {
		return func(addr string) []string {
			return append(verb, "--federator", addr, "--cert", filepath.Join(adm, "admin.crt"),
				"--key", filepath.Join(adm, "admin.key"), "--ca", filepath.Join(adm, "ca.crt"), "--timeout", timeout)
		}
	}
	verbs := []struct {
		name string
		args func(addr string) []string
	}{
		{"join", func(addr string) []string {
			return []string{"join", "--cluster", "south2", "--etcd", "http://" + addr, "--out", filepath.Join(t.TempDir(), "out"),
				"--etcd-dial-timeout", timeout}
		}},
		{"clusters", admin("clusters")},
		{"clusters remove", admin("clusters", "remove", "west")},
		{"exports", admin("exports")},
		{"imports", admin("imports")},
		{"status", admin("status")},
		{"drain", admin("drain", "west")},
		{"undrain", admin("undrain", "west")},
		{"certs bundles", admin("certs", "bundles")},
		{"explain", func(addr string) []string {
			return []string{"explain", "demo/echo", "--gateway-http", "http://" + addr, "--timeout", timeout}
		}},
		{"certs inspect", func(addr string) []string { return []string{"certs", "inspect", addr, "--timeout", timeout} }},
		{"certs inspect --quic", func(addr string) []string {
			return []string{"certs", "inspect", addr, "--quic", "--timeout", timeout}
		}},
	}
	endpoints := []struct {
		name string
		addr func(*testing.T) string
	}{
		{"refused", hangsRefused},
		{"blackhole", hangsBlackhole},
		{"silent", hangsSilent},
	}
	for _, v := range verbs {
		for _, ep := range endpoints {
			t.Run(v.name+"/"+ep.name, func(t *testing.T) {
				addr := ep.addr(t)
				stderr, code, elapsed := hangsRun(t, bin, v.args(addr)...)
				t.Logf("%s in %s: %s", ep.name, elapsed.Round(time.Millisecond), strings.TrimSpace(stderr))
				require.NotZero(t, code)
				require.Less(t, elapsed, hangsTimeout+hangsMargin)
				require.Equal(t, 1, strings.Count(stderr, "\n"), "stderr is one line: %q", stderr)
				require.True(t, strings.HasSuffix(stderr, "\n"), "stderr is one line: %q", stderr)
				require.Contains(t, stderr, addr, "the error names the endpoint")
			})
		}
	}
}

package multicluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/internal/app/devenv"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

type backendReply struct {
	Cluster string `json:"cluster"`
	Service string `json:"service"`
}

func httpGet(t *testing.T, url string) backendReply {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	require.NoError(t, err, "GET %s", url)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, body)
	var r backendReply
	require.NoError(t, json.Unmarshal(body, &r), "GET %s: %s", url, body)
	return r
}

func lookupA(t *testing.T, server, name, transport string) []string {
	t.Helper()
	c := &dns.Client{Net: transport, Timeout: 3 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	r, _, err := c.Exchange(m, server)
	require.NoError(t, err, "query %s over %s at %s", name, transport, server)
	require.Equal(t, dns.RcodeSuccess, r.Rcode, "query %s over %s: %s", name, transport, dns.RcodeToString[r.Rcode])
	require.True(t, r.Authoritative, "answer for %s is not authoritative", name)
	var ips []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
		}
	}
	return ips
}

func clusterByName(t *testing.T, st *devenv.State, name string) devenv.ClusterState {
	t.Helper()
	for _, c := range st.Clusters {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("cluster %s not in state", name)
	return devenv.ClusterState{}
}

// Over 80 lines: one scenario whose steps share the servers it starts.
func TestDevClustersetEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs causeway dev")
	}
	t.Parallel()
	stateFile := filepath.Join(t.TempDir(), "state.json")
	started := time.Now()
	p := startDev(t, "--net", "127.77.0.0/16", "--state-file", stateFile)
	st := p.waitState(t, stateFile, 60*time.Second)
	t.Logf("clusterset ready %s after start", time.Since(started).Round(time.Millisecond))

	require.Len(t, st.Clusters, 3)
	require.NotEmpty(t, st.Etcd)
	for _, c := range st.Clusters {
		for _, f := range []string{c.DNS, c.Gateway, c.Federator, c.HTTP, c.FederatorHTTP, c.DNSHTTP} {
			_, _, err := net.SplitHostPort(f)
			require.NoError(t, err, "cluster %s address %q", c.Name, f)
		}
		require.Contains(t, c.VIPs, "demo/echo")
		require.Contains(t, c.VIPs, "demo/clock")
	}
	services := map[string]devenv.ServiceState{}
	for _, s := range st.Services {
		services[s.Name] = s
	}
	require.ElementsMatch(t, []string{"east", "west"}, services["echo"].ExportedBy)
	require.Equal(t, []string{"north"}, services["clock"].ExportedBy)
	require.Equal(t, 8080, services["echo"].Port)
	// Each gateway's leaf came from its federator's Certs.Sign (a join
	// token over the bootstrap listener), as in a deployment.
	for cluster, leaf := range requireAnnouncedByGateway(t, st) {
		require.Contains(t, p.stderr.String(), "id=spiffe://"+cluster+"."+st.Domain+"/gateway serial="+certs.SerialHex(leaf)+" kind=first",
			"%s's gateway leaf was issued by Certs.Sign", cluster)
	}

	// The printed guide's commands name the real addresses.
	west := clusterByName(t, st, "west")
	require.Contains(t, p.stdout.String(), "curl -s http://"+west.VIPs["demo/clock"]+":8080/")

	// DNS: every shim answers with its own cluster's VIP, over UDP and TCP.
	for _, c := range st.Clusters {
		for _, svc := range []string{"echo", "clock"} {
			for _, transport := range []string{"udp", "tcp"} {
				name := svc + ".demo.svc.clusterset.local"
				ips := lookupA(t, c.DNS, name, transport)
				require.Equal(t, []string{c.VIPs["demo/"+svc]}, ips, "%s from %s over %s", name, c.Name, transport)
			}
		}
	}

	// HTTP through the VIPs: clock always from north; echo local where
	// exported, else from one of the exporters (through the tunnel).
	for _, c := range st.Clusters {
		r := httpGet(t, fmt.Sprintf("http://%s:8080/", c.VIPs["demo/clock"]))
		require.Equal(t, backendReply{Cluster: "north", Service: "clock"}, r, "clock from %s", c.Name)
		for range 5 {
			r = httpGet(t, fmt.Sprintf("http://%s:8080/", c.VIPs["demo/echo"]))
			require.Equal(t, "echo", r.Service)
			switch c.Name {
			case "east", "west":
				require.Equal(t, c.Name, r.Cluster, "echo from %s must stay local", c.Name)
			default:
				require.Contains(t, []string{"east", "west"}, r.Cluster)
			}
		}
	}
	// Direct calls to the backends answer too (the state file's backends).
	for cluster, addr := range services["clock"].Backends {
		require.Equal(t, cluster, httpGet(t, "http://"+addr+"/").Cluster)
	}

	// The tunnel was really used: north's gateway counted ingress streams.
	north := clusterByName(t, st, "north")
	metrics := httpText(t, "http://"+north.HTTP+"/metrics")
	require.Regexp(t, `causeway_gateway_streams_total\{direction="ingress",peer_cluster="[a-z]+",result="ok",service="demo/[a-z]+"\} [1-9]`, metrics)
	// Each component has its own HTTP endpoint, as deployed.
	for _, addr := range []string{north.FederatorHTTP, north.HTTP, north.DNSHTTP} {
		require.Equal(t, "ok\n", httpText(t, "http://"+addr+"/readyz"), addr)
	}
	require.Regexp(t, `(?m)^causeway_federator_etcd_up 1$`, httpText(t, "http://"+north.FederatorHTTP+"/metrics"))

	// SIGTERM: exit 0 within 5 s, nothing left listening.
	code, took := p.stop(t, syscall.SIGTERM, 5*time.Second)
	require.Equal(t, 0, code, "exit code after SIGTERM; stderr:\n%s", p.stderr)
	t.Logf("stopped %s after SIGTERM", took.Round(time.Millisecond))
	for _, c := range st.Clusters {
		requireFree(t, "tcp", c.DNS)
		requireFree(t, "udp", c.DNS)
		requireFree(t, "udp", c.Gateway)
		requireFree(t, "tcp", c.Federator)
		requireFree(t, "tcp", c.HTTP)
		requireFree(t, "tcp", c.FederatorHTTP)
		requireFree(t, "tcp", c.DNSHTTP)
		for _, vip := range c.VIPs {
			requireFree(t, "tcp", vip+":8080")
		}
	}
	requireFree(t, "tcp", st.Etcd)
	_, err := os.Stat(stateFile)
	require.True(t, os.IsNotExist(err), "state file left behind after shutdown")
}

func httpText(t *testing.T, url string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestDevSIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs causeway dev")
	}
	t.Parallel()
	stateFile := filepath.Join(t.TempDir(), "state.json")
	p := startDev(t, "--net", "127.78.0.0/16", "--clusters", "a,b", "--state-file", stateFile)
	st := p.waitState(t, stateFile, 60*time.Second)
	require.Len(t, st.Clusters, 2)
	// With two clusters, clock lives in the last one.
	require.Equal(t, "b", httpGet(t, fmt.Sprintf("http://%s:8080/", st.Clusters[0].VIPs["demo/clock"])).Cluster)
	code, _ := p.stop(t, syscall.SIGINT, 5*time.Second)
	require.Equal(t, 0, code, "stderr:\n%s", p.stderr)
}

// devDataDirs lists the temporary data directories of causeway dev under tmp.
func devDataDirs(tmp string) []string {
	dirs, _ := filepath.Glob(filepath.Join(tmp, "causeway-dev-*"))
	return dirs
}

// TestDevSignalDuringStartup: SIGINT or SIGTERM while causeway dev is still
// starting (its data dir exists, etcd and the clusters are not up yet) is
// a clean stop: exit 0, data dir removed.
func TestDevSignalDuringStartup(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs causeway dev")
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := t.TempDir()
			p := startDevEnv(t, []string{"TMPDIR=" + tmp}, "--net", "127.77.0.0/16", "--clusters", "a,b")
			require.Eventually(t, func() bool { return len(devDataDirs(tmp)) == 1 }, 30*time.Second, 5*time.Millisecond,
				"no data dir under %s; stderr:\n%s", tmp, p.stderr)
			code, _ := p.stop(t, sig, 30*time.Second)
			require.Equal(t, 0, code, "stderr:\n%s", p.stderr)
			require.NotContains(t, p.stderr.String(), "context canceled")
			require.Empty(t, devDataDirs(tmp))
		})
	}
}

// TestDevRemovesDataDirOfKilledDev: the data dir a SIGKILLed causeway dev
// leaves behind is removed by the next start.
func TestDevRemovesDataDirOfKilledDev(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs causeway dev")
	}
	tmp := t.TempDir()
	killed := startDevEnv(t, []string{"TMPDIR=" + tmp}, "--net", "127.76.0.0/16", "--clusters", "a")
	require.Eventually(t, func() bool { return len(devDataDirs(tmp)) == 1 }, 30*time.Second, 5*time.Millisecond,
		"no data dir under %s; stderr:\n%s", tmp, killed.stderr)
	left := devDataDirs(tmp)[0]
	code, _ := killed.stop(t, syscall.SIGKILL, 10*time.Second)
	require.NotEqual(t, 0, code)
	require.DirExists(t, left, "SIGKILL left nothing behind: nothing to test")
	// A directory that is not causeway dev's (no owner file) stays.
	foreign := filepath.Join(tmp, "causeway-dev-foreign")
	require.NoError(t, os.Mkdir(foreign, 0o700))

	next := startDevEnv(t, []string{"TMPDIR=" + tmp}, "--net", "127.76.0.0/16", "--clusters", "a")
	require.Eventually(t, func() bool { _, err := os.Stat(left); return os.IsNotExist(err) }, 30*time.Second, 10*time.Millisecond,
		"stale data dir %s still there; stderr:\n%s", left, next.stderr)
	require.DirExists(t, foreign)
	code, _ = next.stop(t, syscall.SIGINT, 30*time.Second)
	require.Equal(t, 0, code, "stderr:\n%s", next.stderr)
	require.Contains(t, next.stderr.String(), "removed the data directory of a causeway dev that is no longer running")
}

func TestDevBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs causeway dev")
	}
	t.Parallel()
	busy, err := net.ListenPacket("udp", "127.79.1.1:1053")
	require.NoError(t, err)
	defer busy.Close()

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"empty cluster name", []string{"--clusters", "east,,west"}, "empty name"},
		{"duplicate cluster name", []string{"--clusters", "east,west,east"}, `"east" given twice`},
		{"bad cluster name", []string{"--clusters", "East"}, "not a DNS label"},
		{"address in use", []string{"--net", "127.79.0.0/16"}, "127.79.1.1:1053"},
		{"unwritable state file", []string{"--net", "127.80.0.0/16", "--state-file", "/proc/causeway/state.json"}, "/proc/causeway/state.json"},
		{"net outside loopback", []string{"--net", "10.0.0.0/16"}, "inside 127.0.0.0/8"},
		{"net not a prefix", []string{"--net", "127.300.0.0/16"}, `--net "127.300.0.0/16": want a /16 inside 127.0.0.0/8, like 127.10.0.0/16`},
		{"etcd peer port out of range", []string{"--net", "127.81.0.0/16", "--etcd-port", "65535"}, "the peer port is --etcd-port + 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := startDev(t, tc.args...)
			code := p.waitExit(t, 30*time.Second)
			require.NotEqual(t, 0, code, "exit code; stdout:\n%s", p.stdout)
			require.Contains(t, p.stderr.String(), tc.want)
			require.True(t, strings.HasPrefix(p.stderr.String(), "causeway: ") ||
				strings.Contains(p.stderr.String(), "\ncauseway: "), "error not reported as 'causeway: ...':\n%s", p.stderr)
		})
	}
}

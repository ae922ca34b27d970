package multicluster

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Network namespaces, for the scenarios that need what 127.0.0.0/8
// cannot give: addresses Kubernetes accepts in an EndpointSlice (it
// rejects loopback ones), or hosts that can be cut off from each other.
//
// The test runs itself again as a child process inside a namespace it
// created (the hub), for that one test, so that everything the test
// starts in-process (etcd, kube-apiservers, backends, traffic) lives
// there; clusters may get namespaces of their own, joined to the hub by
// veth pairs, the hub routing between them. Nothing is configured in the
// host's namespace, and deleting the namespaces removes every address,
// route and link the test made.

const (
	netnsChildEnv  = "CAUSEWAY_E2E_NETNS_CHILD"  // the test the child process runs
	netnsLayoutEnv = "CAUSEWAY_E2E_NETNS_LAYOUT" // its netLayout, JSON
	binaryEnv      = "CAUSEWAY_E2E_BINARY"       // a causeway binary already built
	netnsPrefix    = "cwe2e-"                    // + the parent's pid + "-" + role
)

// netLayout is where a netns test's clusters live, as the child sees it.
type netLayout struct {
	Hub      string       `json:"hub"`      // the namespace the test runs in
	EtcdHost string       `json:"etcdHost"` // hub address every cluster reaches
	Clusters []netCluster `json:"clusters"`
}

// netCluster places one cluster.
type netCluster struct {
	Name     string `json:"name"`
	Netns    string `json:"netns"` // its processes' namespace; "" = the hub
	IP       string `json:"ip"`    // every listener of the cluster binds it
	HubIP    string `json:"hubIP"` // the hub's address facing the cluster: its backends listen there
	VIPRange string `json:"vipRange"`
}

func (l *netLayout) cluster(name string) netCluster {
	for _, c := range l.Clusters {
		if c.Name == name {
			return c
		}
	}
	panic("netns layout has no cluster " + name)
}

// runInNetns runs the calling test inside network namespaces. In the
// parent it creates them (the hub and, when separate is set, one per
// cluster joined to it by a veth pair), runs this test alone in the hub
// as a child process, makes the child's verdict this test's, deletes the
// namespaces and returns nil, nil: the caller returns. In the child it
// returns the layout: the caller carries on. err says why namespaces
// cannot be used here (not root, no ip(8), no CAP_SYS_ADMIN); the caller
// falls back or skips with it.
func runInNetns(t *testing.T, clusters []string, separate bool) (*netLayout, error) {
	t.Helper()
	if os.Getenv(netnsChildEnv) == t.Name() {
		var l netLayout
		if err := json.Unmarshal([]byte(os.Getenv(netnsLayoutEnv)), &l); err != nil {
			t.Fatalf("netns child: layout %q: %v", os.Getenv(netnsLayoutEnv), err)
		}
		return &l, nil
	}
	if err := netnsUsable(); err != nil {
		return nil, err
	}
	removeStaleNetns(t)
	base := fmt.Sprintf("%s%d-", netnsPrefix, os.Getpid())
	role := strings.ToLower(strings.TrimPrefix(t.Name(), "TestScenario"))
	if len(role) > 12 {
		role = role[:12]
	}
	l := &netLayout{Hub: base + role}
	var made []string
	t.Cleanup(func() { deleteNetns(t, made) })
	mustRun(t, "ip", "netns", "add", l.Hub)
	made = append(made, l.Hub)
	mustRun(t, "ip", "-n", l.Hub, "link", "set", "lo", "up")
	for i, name := range clusters {
		n := i + 1
		c := netCluster{Name: name}
		if separate {
			// 10.200.n.1 (hub) — veth — 10.200.n.2 (cluster); the
			// cluster's VIPs, 10.201.n.128/25, are local in its
			// namespace and routed to it by the hub.
			c.Netns = fmt.Sprintf("%s%s-%d", base, role, n)
			c.HubIP, c.IP = fmt.Sprintf("10.200.%d.1", n), fmt.Sprintf("10.200.%d.2", n)
			c.VIPRange = fmt.Sprintf("10.201.%d.128/25", n)
			hubIf, nsIf := fmt.Sprintf("hub%d", n), fmt.Sprintf("c%d", n)
			mustRun(t, "ip", "netns", "add", c.Netns)
			made = append(made, c.Netns)
			mustRun(t, "ip", "-n", c.Netns, "link", "set", "lo", "up")
			mustRun(t, "ip", "-n", l.Hub, "link", "add", hubIf, "type", "veth", "peer", "name", nsIf, "netns", c.Netns)
			mustRun(t, "ip", "-n", l.Hub, "addr", "add", c.HubIP+"/24", "dev", hubIf)
			mustRun(t, "ip", "-n", l.Hub, "link", "set", hubIf, "up")
			mustRun(t, "ip", "-n", c.Netns, "addr", "add", c.IP+"/24", "dev", nsIf)
			mustRun(t, "ip", "-n", c.Netns, "link", "set", nsIf, "up")
			mustRun(t, "ip", "-n", c.Netns, "route", "add", "default", "via", c.HubIP)
			mustRun(t, "ip", "-n", c.Netns, "route", "add", "local", c.VIPRange, "dev", "lo")
			mustRun(t, "ip", "-n", l.Hub, "route", "add", c.VIPRange, "via", c.IP)
			if l.EtcdHost == "" {
				l.EtcdHost = c.HubIP
			}
		} else {
			// Everything in the hub: 10.202.n.0/24 is local there.
			c.IP = fmt.Sprintf("10.202.%d.1", n)
			c.HubIP, c.VIPRange = c.IP, fmt.Sprintf("10.202.%d.128/25", n)
			mustRun(t, "ip", "-n", l.Hub, "route", "add", "local", fmt.Sprintf("10.202.%d.0/24", n), "dev", "lo")
		}
		l.Clusters = append(l.Clusters, c)
	}
	if separate {
		// The hub forwards between the clusters (this sysctl is the hub's own).
		mustRun(t, "ip", "netns", "exec", l.Hub, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	} else {
		l.EtcdHost = "127.0.0.1"
	}
	runNetnsChild(t, l)
	return nil, nil
}

// runNetnsChild runs t alone in l's hub and fails, skips or passes t as
// the child did.
func runNetnsChild(t *testing.T, l *netLayout) {
	t.Helper()
	layout, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"netns", "exec", l.Hub, os.Args[0], "-test.run", "^" + t.Name() + "$", "-test.v", "-test.count=1"}
	if d, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout", time.Until(d).Round(time.Second).String())
	}
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), netnsChildEnv+"="+t.Name(), netnsLayoutEnv+"="+string(layout),
		binaryEnv+"="+causewayBinary(t))
	dieWithTest(cmd)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var verdict string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			t.Log("netns: " + line)
			for _, v := range []string{"PASS", "FAIL", "SKIP"} {
				if strings.HasPrefix(strings.TrimSpace(line), "--- "+v+": "+t.Name()+" ") {
					verdict = v
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	t.Logf("running %s in network namespace %s", t.Name(), l.Hub)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start netns child: %v", err)
	}
	werr := cmd.Wait()
	_ = pw.Close()
	<-done
	switch {
	case verdict == "SKIP" && werr == nil:
		t.Skip("the child skipped (see its log above)")
	case verdict == "PASS" && werr == nil:
	default:
		t.Fatalf("%s in network namespace %s: verdict %q, exit: %v", t.Name(), l.Hub, verdict, werr)
	}
}

// netnsUsable says why this process cannot make network namespaces.
func netnsUsable() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("no ip(8) (iproute2): %w", err)
	}
	probe := fmt.Sprintf("%s%d-probe", netnsPrefix, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add: %v: %s", err, strings.TrimSpace(string(out)))
	}
	_ = exec.Command("ip", "netns", "del", probe).Run()
	return nil
}

// deleteNetns kills what still runs in the namespaces and deletes them
// (which removes their veth pairs, addresses and routes).
func deleteNetns(t *testing.T, names []string) {
	for _, ns := range names {
		if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	}
	for i := len(names) - 1; i >= 0; i-- {
		if out, err := exec.Command("ip", "netns", "del", names[i]).CombinedOutput(); err != nil {
			t.Logf("delete network namespace %s: %v: %s", names[i], err, out)
		}
	}
}

// removeStaleNetns deletes the namespaces of earlier test processes that
// died without cleaning up (their pid is in the name).
func removeStaleNetns(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	var stale []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], netnsPrefix) {
			continue
		}
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(f[0], netnsPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == nil {
			continue // its test process still runs
		}
		stale = append(stale, f[0])
	}
	if len(stale) > 0 {
		t.Logf("removing network namespaces left by dead test processes: %v", stale)
		deleteNetns(t, stale)
	}
}

// netnsCommand is cmd run in namespace ns ("" = this process's), killed
// if the test process dies.
func netnsCommand(ns, bin string, args ...string) *exec.Cmd {
	if ns != "" {
		bin, args = "ip", append([]string{"netns", "exec", ns, bin}, args...)
	}
	cmd := exec.Command(bin, args...)
	dieWithTest(cmd)
	return cmd
}

// blockPath drops (on) or stops dropping every packet the hub forwards
// between addresses a and b, in both directions: a partition between two
// cluster namespaces, silent as a real one (no ICMP, no local error).
func blockPath(t *testing.T, a, b string, on bool) {
	t.Helper()
	verb := "add"
	if !on {
		verb = "del"
	}
	for _, r := range [][2]string{{a, b}, {b, a}} {
		mustRun(t, "ip", "rule", verb, "from", r[0], "to", r[1], "blackhole")
	}
}

// mustRun runs name with args and fails t, with the command's output,
// if it fails.
func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

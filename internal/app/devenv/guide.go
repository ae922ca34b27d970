package devenv

import (
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
)

// PrintGuide writes a short tour of a running clusterset to w. bin is how
// to run the causeway binary (its path, or "causeway" when it is on PATH);
// if empty, "causeway".
func PrintGuide(w io.Writer, st *State, bin string) {
	if bin == "" {
		bin = "causeway"
	}
	n := len(st.Clusters)
	fmt.Fprintf(w, "\nCauseway dev clusterset is up: %d %s, etcd at %s\n\n", n, plural(n, "cluster", "clusters"), st.Etcd)
	nameW, regionW := len("CLUSTER"), len("REGION")
	for _, c := range st.Clusters {
		nameW, regionW = max(nameW, len(c.Name)), max(regionW, len(c.Region))
	}
	row := func(cells ...string) {
		fmt.Fprintf(w, "  %-*s  %-*s  %-20s  %-20s  %-20s  %s\n", nameW, cells[0], regionW, cells[1], cells[2], cells[3], cells[4], cells[5])
	}
	row("CLUSTER", "REGION", "DNS", "GATEWAY (udp)", "FEDERATOR API", "HTTP (federator, gateway, DNS shim)")
	for _, c := range st.Clusters {
		row(c.Name, c.Region, c.DNS, c.Gateway, c.Federator, httpPorts(c))
	}
	fmt.Fprintln(w, "\nServices:")
	for _, s := range st.Services {
		fmt.Fprintf(w, "  %s.%s %s, exported by %v\n", s.Name, s.Namespace, portsText(s), s.ExportedBy)
	}
	if len(st.Clusters) == 0 || len(st.Services) == 0 {
		return
	}
	c := st.Clusters[min(1, len(st.Clusters)-1)]
	host, port, _ := net.SplitHostPort(c.DNS)
	fmt.Fprintf(w, "\nTry it from cluster %s:\n", c.Name)
	for _, s := range st.Services {
		name := s.Name + "." + s.Namespace + ".svc." + st.Domain
		fmt.Fprintf(w, "  dig @%s -p %s +short %s\n", host, port, name)
		fmt.Fprintf(w, "  curl -s http://%s:%d/\n", c.VIPs[s.Namespace+"/"+s.Name], s.Port)
	}
	fmt.Fprintf(w, "  curl -s http://%s/metrics | grep causeway_gateway_streams_total\n", c.HTTP)
	printL7Guide(w, st, bin)
	if st.File != "" {
		s := st.Services[0]
		fmt.Fprintf(w, "\nOperate it (--cluster NAME picks a cluster's federator; default %s):\n", st.Clusters[0].Name)
		fmt.Fprintf(w, "  export %s=%s\n", "CAUSEWAY_STATE_FILE", st.File)
		fmt.Fprintf(w, "  %[1]s clusters; %[1]s exports; %[1]s imports; %[1]s status --cluster %[2]s\n", bin, c.Name)
		fmt.Fprintf(w, "  %s explain %s/%s --port %d --cluster %s\n", bin, s.Namespace, s.Name, s.Port, c.Name)
	}
	fmt.Fprintf(w, "\nOr, without the state file, through %s's federator:\n", c.Name)
	fmt.Fprintf(w, "  export CAUSEWAY_FEDERATOR=%s CAUSEWAY_CERT=%s CAUSEWAY_KEY=%s CAUSEWAY_CA=%s\n",
		c.Federator, c.AdminCert, c.AdminKey, c.CAFile)
	if c.Dir != "" {
		fmt.Fprintf(w, "\nEach component runs from the files a deployment uses, e.g. %s's: %s/{federator,gateway,dnsshim}.yaml\n", c.Name, c.Dir)
	}
	fmt.Fprintln(w, "\nCtrl-C stops everything.")
}

// printL7Guide shows one command per L7 feature, from a cluster that does
// not export the service with the most exporters (so that requests are
// spread over them): per-request balancing against the L4 port, routes,
// metrics and explain.
func printL7Guide(w io.Writer, st *State, bin string) {
	var s ServiceState
	for _, x := range st.Services {
		if x.L7Port() != 0 && len(x.ExportedBy) > len(s.ExportedBy) {
			s = x
		}
	}
	if s.L7Port() == 0 {
		return
	}
	c := st.Clusters[len(st.Clusters)-1]
	for _, x := range st.Clusters {
		if !slices.Contains(s.ExportedBy, x.Name) {
			c = x
			break
		}
	}
	vip, l7 := c.VIPs[s.Namespace+"/"+s.Name], s.L7Port()
	fmt.Fprintf(w, "\nL7: port %d (appProtocol http) balances and routes each request on its own; from cluster %s:\n", l7, c.Name)
	fmt.Fprintf(w, "  curl -s 'http://%s:%d/[1-10]'   # one connection, answered by %s\n", vip, l7, strings.Join(s.ExportedBy, " and "))
	fmt.Fprintf(w, "  curl -s 'http://%s:%d/[1-10]'   # L4 port: one connection, one cluster\n", vip, s.Port)
	if st.RoutesFile != "" {
		fmt.Fprintf(w, "  curl -s -H 'x-canary: 1' http://%s:%d/   # routed by %s (edits load within a second)\n", vip, l7, st.RoutesFile)
	} else {
		fmt.Fprintf(w, "  # route by path, header and weight, per cluster too: restart with --routes FILE (docs/traffic.md)\n")
	}
	fmt.Fprintf(w, "  curl -s http://%s/metrics | grep causeway_gateway_requests_total\n", c.HTTP)
	fmt.Fprintf(w, "  %s explain %s/%s --port %d --cluster %s\n", bin, s.Namespace, s.Name, l7, c.Name)
}

// portsText is "ports 8080 (L4) and 8081 (http, L7)".
func portsText(s ServiceState) string {
	if len(s.Ports) == 0 {
		return fmt.Sprintf("port %d", s.Port)
	}
	parts := make([]string, len(s.Ports))
	for i, p := range s.Ports {
		parts[i] = fmt.Sprintf("%d (L4)", p.Port)
		if p.AppProtocol != "" {
			parts[i] = fmt.Sprintf("%d (%s, L7)", p.Port, p.AppProtocol)
		}
	}
	list := parts[len(parts)-1]
	if len(parts) > 1 {
		list = strings.Join(parts[:len(parts)-1], ", ") + " and " + list
	}
	return plural(len(parts), "port ", "ports ") + list
}

// httpPorts shows a cluster's three HTTP endpoints: the federator's
// address, then the gateway's and DNS shim's ports when they share its
// host.
func httpPorts(c ClusterState) string {
	host, _, err := net.SplitHostPort(c.FederatorHTTP)
	if err != nil {
		return c.HTTP
	}
	out := c.FederatorHTTP
	for _, a := range []string{c.HTTP, c.DNSHTTP} {
		if h, p, err := net.SplitHostPort(a); err == nil && h == host {
			out += ", :" + p
		} else {
			out += ", " + a
		}
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

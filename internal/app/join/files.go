package join

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator/store"
	"sigs.k8s.io/yaml"
)

// q quotes s for YAML (a JSON string is a YAML double-quoted scalar).
func q(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func qs(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = q(s)
	}
	return "[" + strings.Join(out, ", ") + "]"
}

// valuesFile is the Helm values file of the new cluster.
func valuesFile(o Options) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Helm values of cluster %s, written by `causeway join`.\n", o.Cluster)
	fmt.Fprintf(&b, "# helm install causeway deploy/helm/causeway -n %s -f values.yaml\n", o.Namespace)
	fmt.Fprintf(&b, "cluster: %s\ndomain: %s\n", q(o.Cluster), q(o.Domain))
	if o.Region != "" {
		fmt.Fprintf(&b, "region: %s\n", q(o.Region))
	}
	if o.Zone != "" {
		fmt.Fprintf(&b, "zone: %s\n", q(o.Zone))
	}
	fmt.Fprintf(&b, "ca:\n  secretName: %s\n", q(o.CASecret))
	e := o.Etcd
	fmt.Fprintf(&b, "etcd:\n  endpoints: %s\n", qs(e.Endpoints))
	fmt.Fprintf(&b, "  secretName: %s\n", q(o.EtcdSecret))
	fmt.Fprintf(&b, "  tls:\n    ca: %t\n    clientCert: false\n", e.CAFile != "")
	if e.ServerName != "" {
		fmt.Fprintf(&b, "    serverName: %s\n", q(e.ServerName))
	}
	fmt.Fprintf(&b, "  username: %s\n", q(store.ClusterUser(o.Cluster)))
	fmt.Fprintf(&b, "gateway:\n")
	if len(o.Advertise) > 0 {
		fmt.Fprintf(&b, "  advertise: %s\n", qs(o.Advertise))
	} else {
		fmt.Fprintf(&b, "  # The address(es) peer clusters' gateways dial (the gateway Service's\n")
		fmt.Fprintf(&b, "  # load balancer address or DNS name and port). Required: set before install.\n")
		fmt.Fprintf(&b, "  advertise: []\n")
	}
	return b.Bytes()
}

// secretManifest renders an Opaque Secret with data (base64 by YAML).
func secretManifest(o Options, name, comment string, data map[string][]byte) ([]byte, error) {
	obj := map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"type":       "Opaque",
		"metadata": map[string]any{
			"name":      name,
			"namespace": o.Namespace,
			"labels": map[string]string{
				"app.kubernetes.io/part-of": "causeway",
				"causeway.dev/cluster":      o.Cluster,
			},
		},
		"data": data,
	}
	b, err := yaml.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("render Secret %s: %w", name, err)
	}
	return append([]byte(comment), b...), nil
}

// caSecretManifest is the CA directory of dir as the chart's CA Secret.
func caSecretManifest(o Options, dir string) ([]byte, error) {
	data := map[string][]byte{}
	for _, name := range []string{certs.CACertFile, certs.CAKeyFile, certs.BundleFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read CA directory: %w", err)
		}
		data[name] = b
	}
	comment := fmt.Sprintf("# The CA of cluster %s (trust domain %s), for the federator.\n# It holds the CA's private key: apply it, then keep this file as safe as %s.\n",
		o.Cluster, certs.TrustDomainFor(o.Cluster, o.Domain), filepath.Join(dir, certs.CAKeyFile))
	return secretManifest(o, o.CASecret, comment, data)
}

// etcdSecretManifest is the federator's etcd credentials as the chart's
// etcd Secret: the password of the cluster's own etcd user and, with
// --etcd-ca, the CA (keys password, ca.crt). The client certificate given
// to join is the clusterset admin's, never the cluster's: it is not copied.
func etcdSecretManifest(o Options, password string) ([]byte, error) {
	data := map[string][]byte{"password": []byte(password)}
	if o.Etcd.CAFile != "" {
		b, err := os.ReadFile(o.Etcd.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read etcd CA: %w", err)
		}
		data["ca.crt"] = b
	}
	comment := fmt.Sprintf("# The federation etcd credentials of cluster %s's federator (etcd user %s).\n",
		o.Cluster, store.ClusterUser(o.Cluster))
	return secretManifest(o, o.EtcdSecret, comment, data)
}

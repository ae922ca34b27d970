package devenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator"
	"github.com/causeway-mesh/causeway/federator/store"
	"github.com/causeway-mesh/causeway/internal/app/component"
	"github.com/causeway-mesh/causeway/internal/lib/embedetcd"
	"github.com/causeway-mesh/causeway/internal/lib/rungroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// start writes the cluster's configuration files (as an operator writes a
// deployment's: federator.yaml, gateway.yaml, dnsshim.yaml, exports and
// join tokens in the cluster's directory), loads them with the
// components' own loaders and runs each component through
// internal/app/component on the cluster's listeners, in g: the same code
// as `causeway federator|gateway|dnsshim --config`.
func (c *cluster) start(g *rungroup.Group, cfg Config, etcd *devEtcd, svcs []demoService) error {
	var err error
	if c.admin, err = c.writeAdminCreds(cfg.LeafLifetime); err != nil {
		return err
	}
	fed, tokens, err := c.federatorConfig(cfg, etcd, svcs)
	if err != nil {
		return err
	}
	gw, dns, err := c.clientConfigs(cfg, tokens)
	if err != nil {
		return err
	}
	name, log := c.spec.Name, cfg.Logger // each component adds the cluster attribute
	g.Go(name+" federator", func(ctx context.Context) error { return component.RunFederatorOn(ctx, fed, log, c.fed) })
	g.Go(name+" gateway", func(ctx context.Context) error { return component.RunGatewayOn(ctx, gw, log, c.gw) })
	g.Go(name+" dnsshim", func(ctx context.Context) error { return component.RunDNSShimOn(ctx, dns, log, c.dns) })
	for _, s := range svcs {
		if ln, ok := c.backends[s.Name]; ok {
			h := backendHandler(name, s)
			g.Go(name+" backend "+s.Name, func(ctx context.Context) error { return serveBackend(ctx, ln, h) })
		}
	}
	return nil
}

// federatorConfig writes and loads the cluster's federator configuration:
// its etcd user, CA directory, static exports, VIP range, peer pins and
// Certs.Sign with one join token per component. It returns the token
// files by component.
func (c *cluster) federatorConfig(cfg Config, etcd *devEtcd, svcs []demoService) (*component.FederatorConfig, map[string]string, error) {
	exports, err := c.writeExports(svcs)
	if err != nil {
		return nil, nil, err
	}
	tokensFile, tokens, err := c.writeJoinTokens("gateway", "dnsshim")
	if err != nil {
		return nil, nil, err
	}
	user := store.ClusterUser(c.spec.Name)
	if _, err := etcd.password(user); err != nil {
		return nil, nil, err
	}
	f := component.FederatorConfig{
		Identity: component.Identity{Cluster: c.spec.Name, Domain: cfg.Domain},
		Region:   c.spec.Region, Zone: c.spec.Zone, Instance: c.spec.Name + "-federator-0",
		Etcd: component.EtcdConfig{Endpoints: []string{etcd.srv.Endpoint()}, CAFile: etcd.srv.TLS().CAFile,
			ServerName: embedetcd.ServerName, Username: user, PasswordFile: etcd.passwordFile(user)},
		Listen: component.FederatorListenConfig{GRPC: c.fed.GRPC.Addr().String(),
			Bootstrap: c.fed.Bootstrap.Addr().String(), HTTP: c.fed.HTTP.Addr().String()},
		CADir:     c.caDir(),
		VIPRanges: []string{cfg.vipRange(c.idx).String()},
		Exports:   component.ExportsConfig{Static: exports},
		Signing: component.SigningConfig{Lifetime: metav1.Duration{Duration: cfg.LeafLifetime},
			JoinTokensFile: tokensFile},
		TrustPins: c.pins,
	}
	path, err := c.writeYAML("federator.yaml", f, 0o600)
	if err != nil {
		return nil, nil, err
	}
	loaded, err := component.LoadFederatorConfig(path)
	return loaded, tokens, err
}

// clientConfigs writes and loads the gateway's and DNS shim's
// configurations: each reaches the federator's listeners, verifies it
// against the CA directory's bundle.crt and presents its join token; the
// gateway loads the routes file of --routes, if any.
func (c *cluster) clientConfigs(cfg Config, tokens map[string]string) (*component.GatewayConfig, *component.DNSShimConfig, error) {
	client := func(name string) component.ClientConfig {
		return component.ClientConfig{Identity: component.Identity{Cluster: c.spec.Name, Domain: cfg.Domain},
			Federator: c.fed.GRPC.Addr().String(), Bootstrap: c.fed.Bootstrap.Addr().String(),
			CAFile: filepath.Join(c.caDir(), certs.BundleFile), TokenFile: tokens[name]}
	}
	gwAddr := c.gw.QUIC.LocalAddr().String()
	gwPath, err := c.writeYAML("gateway.yaml", component.GatewayConfig{ClientConfig: client("gateway"),
		Instance: "gw-0", Listen: gwAddr, Advertise: []string{gwAddr}, HTTP: c.gw.HTTP.Addr().String(),
		Routes: cfg.RoutesFile}, 0o644)
	if err != nil {
		return nil, nil, err
	}
	dnsPath, err := c.writeYAML("dnsshim.yaml", component.DNSShimConfig{ClientConfig: client("dnsshim"),
		Listen: c.dns.UDP.LocalAddr().String(), HTTP: c.dns.HTTP.Addr().String()}, 0o644)
	if err != nil {
		return nil, nil, err
	}
	gw, err := component.LoadGatewayConfig(gwPath)
	if err != nil {
		return nil, nil, err
	}
	dns, err := component.LoadDNSShimConfig(dnsPath)
	return gw, dns, err
}

// writeJoinTokens writes one new join token per component: each to its own
// 0600 file (the component's tokenFile), and all of them to the
// federator's joinTokensFile. It returns that file and the token files by
// component.
func (c *cluster) writeJoinTokens(components ...string) (string, map[string]string, error) {
	byToken, files := map[string]string{}, map[string]string{}
	for _, name := range components {
		tok, err := federator.NewJoinToken()
		if err != nil {
			return "", nil, err
		}
		byToken[tok] = name
		files[name] = filepath.Join(c.dir, name+".token")
		if err := os.WriteFile(files[name], []byte(tok+"\n"), 0o600); err != nil {
			return "", nil, fmt.Errorf("write %s join token of %s: %w", name, c.spec.Name, err)
		}
	}
	path, err := c.writeYAML("join-tokens.yaml", byToken, 0o600)
	return path, files, err
}

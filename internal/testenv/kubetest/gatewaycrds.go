package kubetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GatewayAPIModule is the module whose CRDs InstallGatewayAPICRDs installs.
const GatewayAPIModule = "sigs.k8s.io/gateway-api"

// Gateway API release channels: the experimental CRDs are a superset of the
// standard ones (e.g. HTTPRoute's retry field is experimental only).
const (
	GatewayAPIStandard     = "standard"
	GatewayAPIExperimental = "experimental"
)

// InstallGatewayAPICRDs creates the CRDs of the Gateway API resources
// (plural names, e.g. "httproutes", "grpcroutes") from channel's YAML in
// the gateway-api module go.mod requires, found with `go list -m`, and
// waits until each is Established.
func (c *Cluster) InstallGatewayAPICRDs(ctx context.Context, channel string, resources ...string) error {
	dir, err := moduleDir(GatewayAPIModule)
	if err != nil {
		return err
	}
	var names []string
	for _, res := range resources {
		path := filepath.Join(dir, "config", "crd", channel, "gateway.networking.k8s.io_"+res+".yaml")
		doc, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read Gateway API CRD: %w", err)
		}
		obj, err := decodeYAML(doc)
		if err != nil {
			return fmt.Errorf("decode %s: %w", path, err)
		}
		if _, err := c.Dynamic.Resource(crdGVR).Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create CRD %s: %w", obj.GetName(), err)
		}
		names = append(names, obj.GetName())
	}
	for _, name := range names {
		err := poll(ctx, func(ctx context.Context) error {
			obj, err := c.Dynamic.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !conditionTrue(obj, "Established") {
				return fmt.Errorf("CRD %s not Established yet", name)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("wait for CRD %s: %w", name, err)
		}
	}
	return nil
}

// moduleDir is the directory of module mod in the module cache, as the
// main module requires it.
func moduleDir(mod string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mod)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("locate module %s: %w: %s", mod, err, strings.TrimSpace(stderr.String()))
	}
	dir := strings.TrimSpace(stdout.String())
	if dir == "" {
		return "", fmt.Errorf("locate module %s: not downloaded (go mod download %s)", mod, mod)
	}
	return dir, nil
}

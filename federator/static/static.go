package static

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/internal/lib/configfile"
	"github.com/causeway-mesh/causeway/internal/lib/names"
	"go.yaml.in/yaml/v3"
)

// FormatVersion is the file format version this build reads.
const FormatVersion = 1

// File is the YAML document.
type File struct {
	// Version must be 1.
	Version  int       `json:"version"`
	Services []Service `json:"services"`
}

// Service is one exported service.
type Service struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Type is ClusterSetIP (default) or Headless.
	Type string `json:"type,omitempty"`
	// Routing is gateway (default) or local-direct.
	Routing string `json:"routing,omitempty"`
	// ClusterIP is the address local clients reach the service at without
	// Causeway; DNS answers it under local-direct routing.
	ClusterIP string     `json:"clusterIP,omitempty"`
	Ports     []Port     `json:"ports"`
	Endpoints []Endpoint `json:"endpoints"`
}

// Port is one service port.
type Port struct {
	Name string `json:"name,omitempty"`
	Port uint32 `json:"port" want:"a port number 1-65535"`
	// Protocol is TCP (default), UDP or SCTP.
	Protocol    string `json:"protocol,omitempty"`
	AppProtocol string `json:"appProtocol,omitempty"`
}

// Endpoint is one backend.
type Endpoint struct {
	Address  string `json:"address"`
	Hostname string `json:"hostname,omitempty"`
	Zone     string `json:"zone,omitempty"`
	// Ready defaults to true.
	Ready *bool `json:"ready,omitempty"`
	// TargetPorts maps a service port (name or number) to the port the
	// backend listens on, when it differs.
	TargetPorts map[string]uint32 `json:"targetPorts,omitempty" want:"a port number 1-65535"`
}

// Parse decodes and validates a file's bytes into the export records of
// cluster. defaultZone is used for endpoints without a zone. Errors name
// the YAML path of the field, with the service's namespace/name
// (`services[2] (demo/echo).ports[0].port: …`), and what is wanted.
func Parse(data []byte, cluster, defaultZone string) ([]*causewayv1.ExportRecord, error) {
	var f File
	if err := configfile.Decode(data, &f, configfile.Options{Label: serviceLabel}); err != nil {
		return nil, err
	}
	switch f.Version {
	case FormatVersion:
	case 0:
		return nil, fmt.Errorf("version: required (this build reads version %d)", FormatVersion)
	default:
		return nil, fmt.Errorf("version: %d is not supported, want %d", f.Version, FormatVersion)
	}
	seen := map[string]int{}
	out := make([]*causewayv1.ExportRecord, 0, len(f.Services))
	for i, s := range f.Services {
		where := fmt.Sprintf("services[%d] (%s/%s)", i, s.Namespace, s.Name)
		rec, err := s.record(cluster, defaultZone)
		if err != nil {
			return nil, fmt.Errorf("%s.%w", where, err)
		}
		key := s.Namespace + "/" + s.Name
		if j, dup := seen[key]; dup {
			return nil, fmt.Errorf("%s: listed twice (also services[%d])", where, j)
		}
		seen[key] = i
		out = append(out, rec)
	}
	return out, nil
}

// serviceLabel adds a service's namespace/name to its path in errors.
func serviceLabel(field string, n *yaml.Node) string {
	if field != "services" || n.Kind != yaml.MappingNode {
		return ""
	}
	var ns, name string
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "namespace":
			ns = n.Content[i+1].Value
		case "name":
			name = n.Content[i+1].Value
		}
	}
	return fmt.Sprintf(" (%s/%s)", ns, name)
}

// labelError says why s is not a DNS label, in the user's terms.
func labelError(s string) string {
	switch {
	case s == "":
		return "required, a DNS label"
	case len(s) > 63:
		return fmt.Sprintf("%q is %d characters long, a DNS label has at most 63", s, len(s))
	}
	return fmt.Sprintf("%q is not a DNS label (lowercase letters, digits and '-', starting and ending with a letter or digit)", s)
}

func (s Service) record(cluster, defaultZone string) (*causewayv1.ExportRecord, error) {
	if !names.IsDNSLabel(s.Namespace) {
		return nil, fmt.Errorf("namespace: %s", labelError(s.Namespace))
	}
	if !names.IsDNSLabel(s.Name) {
		return nil, fmt.Errorf("name: %s", labelError(s.Name))
	}
	rec := &causewayv1.ExportRecord{
		Namespace:       s.Namespace,
		Name:            s.Name,
		Cluster:         cluster,
		SessionAffinity: "None",
		ReadyPerZone:    map[string]uint32{},
	}
	switch s.Type {
	case "", "ClusterSetIP":
		rec.Type = causewayv1.ServiceType_SERVICE_TYPE_CLUSTER_SET_IP
	case "Headless":
		rec.Type = causewayv1.ServiceType_SERVICE_TYPE_HEADLESS
	default:
		return nil, fmt.Errorf("type: want ClusterSetIP or Headless, got %q", s.Type)
	}
	switch s.Routing {
	case "", "gateway":
		rec.Routing = causewayv1.RoutingPolicy_ROUTING_POLICY_GATEWAY
	case "local-direct":
		rec.Routing = causewayv1.RoutingPolicy_ROUTING_POLICY_LOCAL_DIRECT
	default:
		return nil, fmt.Errorf("routing: want gateway or local-direct, got %q", s.Routing)
	}
	if s.ClusterIP != "" {
		ip, err := netip.ParseAddr(s.ClusterIP)
		if err != nil {
			return nil, fmt.Errorf("clusterIP: want an IP address like 10.96.0.7, got %q", s.ClusterIP)
		}
		rec.ClusterIp = ip.String()
	}
	if rec.Routing == causewayv1.RoutingPolicy_ROUTING_POLICY_LOCAL_DIRECT && rec.ClusterIp == "" {
		return nil, errors.New("clusterIP: required with routing local-direct (DNS answers it)")
	}
	if len(s.Ports) == 0 {
		return nil, errors.New("ports: required, at least one")
	}
	portNames, err := s.addPorts(rec)
	if err != nil {
		return nil, err
	}
	if err := s.addEndpoints(rec, portNames, defaultZone); err != nil {
		return nil, err
	}
	return rec, nil
}

// addPorts validates the service's ports into rec and returns their names.
func (s Service) addPorts(rec *causewayv1.ExportRecord) (map[string]bool, error) {
	portNames := map[string]bool{}
	for j, p := range s.Ports {
		sp, err := p.record()
		if err != nil {
			return nil, fmt.Errorf("ports[%d].%w", j, err)
		}
		if p.Name != "" {
			if portNames[p.Name] {
				return nil, fmt.Errorf("ports[%d].name: %q used twice", j, p.Name)
			}
			portNames[p.Name] = true
		} else if len(s.Ports) > 1 {
			return nil, fmt.Errorf("ports[%d].name: required when there are several ports", j)
		}
		rec.Ports = append(rec.Ports, sp)
	}
	return portNames, nil
}

// addEndpoints validates the service's endpoints into rec, counting the
// ready ones per zone (defaultZone for those that name none).
func (s Service) addEndpoints(rec *causewayv1.ExportRecord, portNames map[string]bool, defaultZone string) error {
	for j, e := range s.Endpoints {
		if e.Address == "" {
			return fmt.Errorf("endpoints[%d].address: required, the backend's IP address", j)
		}
		addr, err := netip.ParseAddr(e.Address)
		if err != nil {
			return fmt.Errorf("endpoints[%d].address: want an IP address like 10.0.3.17, got %q", j, e.Address)
		}
		if e.Hostname != "" && !names.IsDNSLabel(e.Hostname) {
			return fmt.Errorf("endpoints[%d].hostname: %s", j, labelError(e.Hostname))
		}
		for _, k := range sortedKeys(e.TargetPorts) {
			v := e.TargetPorts[k]
			if !portNames[k] && !hasPortNumber(s.Ports, k) {
				return fmt.Errorf("endpoints[%d].targetPorts[%s]: %q names no port of the service", j, k, k)
			}
			if v == 0 || v > 65535 {
				return fmt.Errorf("endpoints[%d].targetPorts[%s]: want a port number 1-65535, got %d", j, k, v)
			}
		}
		zone := e.Zone
		if zone == "" {
			zone = defaultZone
		}
		ready := e.Ready == nil || *e.Ready
		rec.Endpoints = append(rec.Endpoints, &causewayv1.Endpoint{
			Address: addr.String(), Hostname: e.Hostname, Zone: zone, Ready: ready, TargetPorts: e.TargetPorts,
		})
		if ready {
			rec.ReadyPerZone[zone]++
		}
	}
	return nil
}

func sortedKeys(m map[string]uint32) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func hasPortNumber(ports []Port, s string) bool {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return false
	}
	for _, p := range ports {
		if uint64(p.Port) == n {
			return true
		}
	}
	return false
}

func (p Port) record() (*causewayv1.ServicePort, error) {
	if p.Port == 0 || p.Port > 65535 {
		return nil, fmt.Errorf("port: want a port number 1-65535, got %d", p.Port)
	}
	if p.Name != "" && !names.IsDNSLabel(p.Name) {
		return nil, fmt.Errorf("name: %s", labelError(p.Name))
	}
	sp := &causewayv1.ServicePort{Name: p.Name, Port: p.Port, AppProtocol: p.AppProtocol}
	switch strings.ToUpper(p.Protocol) {
	case "", "TCP":
		sp.Protocol = causewayv1.Protocol_PROTOCOL_TCP
	case "UDP":
		sp.Protocol = causewayv1.Protocol_PROTOCOL_UDP
	case "SCTP":
		sp.Protocol = causewayv1.Protocol_PROTOCOL_SCTP
	default:
		return nil, fmt.Errorf("protocol: want TCP, UDP or SCTP, got %q", p.Protocol)
	}
	return sp, nil
}

// Source publishes the exports of a file and reloads it when it changes.
type Source struct {
	// Path of the YAML file.
	Path string
	// Cluster that exports the services.
	Cluster string
	// DefaultZone for endpoints without one.
	DefaultZone string
	// Interval between checks for changes. If zero, 1s.
	Interval time.Duration
	// Logger; if nil, slog.Default().
	Logger *slog.Logger

	afterCheck func() // test hook: called after every periodic check
}

// Load reads and parses the file once.
func (s *Source) Load() ([]*causewayv1.ExportRecord, error) {
	data, err := os.ReadFile(s.Path)
	if err != nil {
		return nil, fmt.Errorf("read static exports: %w", err)
	}
	recs, err := Parse(data, s.Cluster, s.DefaultZone)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Path, err)
	}
	return recs, nil
}

// Run calls publish with the file's exports now and after every change,
// until ctx ends. The first load must succeed. Later, a version that cannot
// be read or does not validate is logged once and reported once through
// onError (if set) — again only when the file's content (or the read
// error) changes — and the last good set stays published.
func (s *Source) Run(ctx context.Context, publish func(context.Context, []*causewayv1.ExportRecord) error, onError func(error)) error {
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	interval := s.Interval
	if interval == 0 {
		interval = time.Second
	}
	var (
		lastGood [sha256.Size]byte // content last published
		lastBad  string            // the rejected version last reported: content hash or read error
	)
	// load publishes a new good version. It returns the error of a bad
	// one with the key that identifies the version.
	load := func() (badKey string, err error) {
		data, err := os.ReadFile(s.Path)
		if err != nil {
			return "read:" + err.Error(), fmt.Errorf("read static exports: %w", err)
		}
		sum := sha256.Sum256(data)
		if sum == lastGood {
			return "", nil
		}
		recs, err := Parse(data, s.Cluster, s.DefaultZone)
		if err != nil {
			return "content:" + hex.EncodeToString(sum[:]), fmt.Errorf("%s: %w", s.Path, err)
		}
		if err := publish(ctx, recs); err != nil {
			return "", fmt.Errorf("publish static exports of %s: %w", s.Path, err) // retried at the next check
		}
		lastGood = sum
		log.Info("static exports loaded", "path", s.Path, "services", len(recs))
		return "", nil
	}
	if _, err := load(); err != nil {
		return err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		key, err := load()
		if s.afterCheck != nil {
			s.afterCheck()
		}
		switch {
		case err == nil:
			lastBad = "" // back to a good version: a later bad one is news
			continue
		case ctx.Err() != nil:
			return nil
		case key != "" && key == lastBad:
			continue // this version was reported already
		}
		lastBad = key
		log.Error("static exports not reloaded; keeping the last good set", "path", s.Path, "err", err)
		if onError != nil {
			onError(err)
		}
	}
}

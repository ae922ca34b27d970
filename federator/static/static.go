package static

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/causeway-mesh/causeway/internal/names"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"sigs.k8s.io/yaml"
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
	Port uint32 `json:"port"`
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
	TargetPorts map[string]uint32 `json:"targetPorts,omitempty"`
}

// Parse decodes and validates a file's bytes into the export records of
// cluster. defaultZone is used for endpoints without a zone.
func Parse(data []byte, cluster, defaultZone string) ([]*causewayv1.ExportRecord, error) {
	var f File
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("parse static exports: %w", err)
	}
	if f.Version != FormatVersion {
		return nil, fmt.Errorf("parse static exports: version %d, want %d", f.Version, FormatVersion)
	}
	seen := map[string]bool{}
	out := make([]*causewayv1.ExportRecord, 0, len(f.Services))
	for i, s := range f.Services {
		rec, err := s.record(cluster, defaultZone)
		if err != nil {
			return nil, fmt.Errorf("services[%d] (%s/%s): %w", i, s.Namespace, s.Name, err)
		}
		key := s.Namespace + "/" + s.Name
		if seen[key] {
			return nil, fmt.Errorf("services[%d]: %s listed twice", i, key)
		}
		seen[key] = true
		out = append(out, rec)
	}
	return out, nil
}

func (s Service) record(cluster, defaultZone string) (*causewayv1.ExportRecord, error) {
	if !names.IsDNSLabel(s.Namespace) {
		return nil, fmt.Errorf("namespace %q is not a DNS label", s.Namespace)
	}
	if !names.IsDNSLabel(s.Name) {
		return nil, fmt.Errorf("name %q is not a DNS label", s.Name)
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
		return nil, fmt.Errorf("type %q: want ClusterSetIP or Headless", s.Type)
	}
	switch s.Routing {
	case "", "gateway":
		rec.Routing = causewayv1.RoutingPolicy_ROUTING_POLICY_GATEWAY
	case "local-direct":
		rec.Routing = causewayv1.RoutingPolicy_ROUTING_POLICY_LOCAL_DIRECT
	default:
		return nil, fmt.Errorf("routing %q: want gateway or local-direct", s.Routing)
	}
	if s.ClusterIP != "" {
		ip, err := netip.ParseAddr(s.ClusterIP)
		if err != nil {
			return nil, fmt.Errorf("clusterIP %q: %w", s.ClusterIP, err)
		}
		rec.ClusterIp = ip.String()
	}
	if rec.Routing == causewayv1.RoutingPolicy_ROUTING_POLICY_LOCAL_DIRECT && rec.ClusterIp == "" {
		return nil, errors.New("routing local-direct needs a clusterIP")
	}
	if len(s.Ports) == 0 {
		return nil, errors.New("no ports")
	}
	portNames := map[string]bool{}
	for j, p := range s.Ports {
		sp, err := p.record()
		if err != nil {
			return nil, fmt.Errorf("ports[%d]: %w", j, err)
		}
		if p.Name != "" {
			if portNames[p.Name] {
				return nil, fmt.Errorf("ports[%d]: name %q used twice", j, p.Name)
			}
			portNames[p.Name] = true
		} else if len(s.Ports) > 1 {
			return nil, fmt.Errorf("ports[%d]: a name is required when there are several ports", j)
		}
		rec.Ports = append(rec.Ports, sp)
	}
	for j, e := range s.Endpoints {
		addr, err := netip.ParseAddr(e.Address)
		if err != nil {
			return nil, fmt.Errorf("endpoints[%d]: address %q: %w", j, e.Address, err)
		}
		if e.Hostname != "" && !names.IsDNSLabel(e.Hostname) {
			return nil, fmt.Errorf("endpoints[%d]: hostname %q is not a DNS label", j, e.Hostname)
		}
		for k, v := range e.TargetPorts {
			if !portNames[k] && !hasPortNumber(s.Ports, k) {
				return nil, fmt.Errorf("endpoints[%d]: targetPorts key %q names no port", j, k)
			}
			if v == 0 || v > 65535 {
				return nil, fmt.Errorf("endpoints[%d]: targetPorts[%s] = %d out of range", j, k, v)
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
	return rec, nil
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
		return nil, fmt.Errorf("port %d out of range", p.Port)
	}
	if p.Name != "" && !names.IsDNSLabel(p.Name) {
		return nil, fmt.Errorf("name %q is not a DNS label", p.Name)
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
		return nil, fmt.Errorf("protocol %q: want TCP, UDP or SCTP", p.Protocol)
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
// until ctx ends. The first load must succeed; later bad versions are
// logged and reported through onError (if set) and the last good set stays.
func (s *Source) Run(ctx context.Context, publish func(context.Context, []*causewayv1.ExportRecord) error, onError func(error)) error {
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	interval := s.Interval
	if interval == 0 {
		interval = time.Second
	}
	var lastSum [32]byte
	load := func() error {
		data, err := os.ReadFile(s.Path)
		if err != nil {
			return fmt.Errorf("read static exports: %w", err)
		}
		sum := sha256.Sum256(data)
		if bytes.Equal(sum[:], lastSum[:]) {
			return nil
		}
		recs, err := Parse(data, s.Cluster, s.DefaultZone)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Path, err)
		}
		if err := publish(ctx, recs); err != nil {
			return err
		}
		lastSum = sum
		log.Info("static exports loaded", "path", s.Path, "services", len(recs))
		return nil
	}
	if err := load(); err != nil {
		return err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := load(); err != nil && ctx.Err() == nil {
				log.Error("static exports not reloaded; keeping the last good set", "err", err)
				if onError != nil {
					onError(err)
				}
			}
		}
	}
}

package corefile

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// NormalizeZone returns the form in which meshd compares server block keys and zones: lower case,
// without the default "dns://" scheme, without the default port 53 and without the trailing dot of
// a fully qualified name. "foo.svc.cluster.local", "foo.svc.cluster.local.:53" and
// "dns://Foo.svc.cluster.local:53" are all "foo.svc.cluster.local". Keys on another port or transport
// keep it ("dns://foo:1053", "tls://foo:853") because CoreDNS serves them on a different listener, so
// they do not collide with meshd's blocks. The root zone is ".".
func NormalizeZone(key string) string {
	k := strings.ToLower(key)
	scheme := "dns"
	if i := strings.Index(k, "://"); i >= 0 {
		scheme, k = k[:i], k[i+len("://"):]
	}
	host, port := k, ""
	if i := strings.LastIndexByte(k, ':'); i >= 0 && i+1 < len(k) && isDigits(k[i+1:]) {
		host, port = k[:i], k[i+1:]
		if n, err := strconv.Atoi(port); err == nil {
			port = strconv.Itoa(n) // "053" is port 53
		}
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		host = "."
	}
	switch {
	case scheme == "dns" && (port == "" || port == "53"):
		return host
	case port == "":
		return scheme + "://" + host
	default:
		return scheme + "://" + host + ":" + port
	}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// label is one DNS label as Kubernetes namespaces and cluster domains spell them (underscores are
// allowed too, as CoreDNS accepts them). Anything else could change how the rendered block parses.
var label = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)

// zoneFor validates a desired block's zone and returns it normalised.
func zoneFor(zone string) (string, error) {
	z := NormalizeZone(zone)
	if z == "." {
		return "", fmt.Errorf("corefile: zone %q is the root zone; meshd only forwards a remote cluster's zone", zone)
	}
	if strings.Contains(z, "://") || len(z) > 253 {
		return "", fmt.Errorf("corefile: zone %q is not a DNS name served on port 53", zone)
	}
	for _, l := range strings.Split(z, ".") {
		if !label.MatchString(l) {
			return "", fmt.Errorf("corefile: zone %q is not a valid DNS name (label %q)", zone, l)
		}
	}
	return z, nil
}

// MaxUpstreams is the most upstreams CoreDNS's forward plugin accepts in one block.
const MaxUpstreams = 15

// upstreamsFor validates a block's upstreams and returns them sorted numerically and de-duplicated, so
// that the rendered block does not change when the load balancer lists its addresses in another order.
func upstreamsFor(zone string, ups []string) ([]netip.AddrPort, error) {
	addrs := make([]netip.AddrPort, 0, len(ups))
	for _, u := range ups {
		a, err := parseUpstream(u)
		if err != nil {
			return nil, fmt.Errorf("corefile: zone %q: upstream %q is not an IP address or an IP address and port", zone, u)
		}
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.AddrPort.Compare)
	addrs = slices.Compact(addrs)
	if len(addrs) == 0 {
		return nil, fmt.Errorf("corefile: zone %q has no upstreams; a forward without upstreams does not parse", zone)
	}
	if len(addrs) > MaxUpstreams {
		return nil, fmt.Errorf("corefile: zone %q has %d upstreams; CoreDNS forward accepts at most %d", zone, len(addrs), MaxUpstreams)
	}
	return addrs, nil
}

// parseUpstream reads an upstream as an address, with port 0 standing for CoreDNS's default (53), or as
// address:port (a NodePort Service's node port; IPv6 in brackets).
func parseUpstream(u string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(u); err == nil && a.Zone() == "" {
		return netip.AddrPortFrom(a.Unmap(), 0), nil
	}
	ap, err := netip.ParseAddrPort(u)
	if err != nil || ap.Addr().Zone() != "" || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("not an upstream: %q", u)
	}
	port := ap.Port()
	if port == 53 {
		port = 0 // the default: 10.0.0.1:53 and 10.0.0.1 are one upstream
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), port), nil
}

// CanonicalUpstream is an upstream of a forward directive as meshd writes it, for comparing: dns:// taken
// off, port 53 left out, the address in canonical form. What is not an address (with a port) stays as
// written, less dns://.
func CanonicalUpstream(u string) string {
	s := strings.TrimPrefix(u, "dns://")
	if a, err := parseUpstream(s); err == nil {
		return upstreamText(a)
	}
	return s
}

// upstreamText is an upstream as a forward directive takes it: the bare address for the default port.
func upstreamText(a netip.AddrPort) string {
	if a.Port() == 0 {
		return a.Addr().String()
	}
	return a.String()
}

// meshName is what a mesh name may be: a Kubernetes label value, which is also safe in a comment line.
var meshName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)

func checkMesh(mesh string) error {
	if !meshName.MatchString(mesh) {
		return fmt.Errorf("corefile: mesh name %q is not a valid label value", mesh)
	}
	return nil
}

// markerRE reads the marker comment meshd writes above its blocks. Only the "meshd.io/mesh=<name>:"
// prefix counts, so that a reworded rest of the line does not lose the block.
var markerRE = regexp.MustCompile(`^#\s*meshd\.io/mesh=([A-Za-z0-9._-]+):`)

// Marker returns the comment line (without line break) meshd writes above each of its blocks.
func Marker(mesh string) string {
	return "# meshd.io/mesh=" + mesh + ": managed by meshd, edits here are overwritten"
}

package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// Resolver looks up the IP addresses of a host name. *net.Resolver
// implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// maxURLLength bounds an endpoint URL.
const maxURLLength = 2048

// AddressError reports an endpoint URL or address that deliveries may not
// reach. Its text names the URL part or address and the rule it breaks.
type AddressError struct {
	Reason string
}

// Error returns the reason.
func (e *AddressError) Error() string { return e.Reason }

func addressErrorf(format string, args ...any) error {
	return &AddressError{Reason: fmt.Sprintf(format, args...)}
}

// AddressPolicy decides which endpoint URLs and IP addresses deliveries
// may reach. It is checked when an endpoint is created or changed, and
// again on every delivery, by the dialer that connects to the endpoint.
//
// A URL must use https, carry no user information, and name its host as
// a plain DNS name or a canonical IP address. Every address that the host
// resolves to must be a public unicast address. Plain http is allowed only
// to a loopback address, and only with AllowInsecureLoopback.
type AddressPolicy struct {
	// AllowInsecureLoopback allows loopback addresses (127.0.0.0/8, ::1),
	// with http or https. The local runner and tests turn it on, so that
	// receivers can run on 127.0.0.1. It must stay off in production.
	AllowInsecureLoopback bool
	// Resolver looks up host names; nil means net.DefaultResolver.
	Resolver Resolver
}

// ParseURL parses an endpoint URL and checks the rules that need no DNS
// lookup: the scheme, the absence of user information and fragments, the
// form of the host and the port. A host given as an IP address is checked
// in full.
func (p AddressPolicy) ParseURL(raw string) (*url.URL, error) {
	if len(raw) > maxURLLength {
		return nil, addressErrorf("the URL has %d characters; the maximum is %d", len(raw), maxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, addressErrorf("the URL does not parse: %v", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, addressErrorf("the URL must start with https://")
	}
	if u.Opaque != "" || !strings.HasPrefix(raw[len(u.Scheme):], "://") {
		return nil, addressErrorf("the URL must be absolute, such as https://example.com/webhooks")
	}
	if u.User != nil {
		return nil, addressErrorf("the URL must not contain a user name or password")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, addressErrorf("the URL must not contain a fragment (#...)")
	}

	// url.Parse decodes percent-escapes in the host, so the host is
	// checked in the raw text as well.
	authority := raw[len(u.Scheme)+len("://"):]
	if i := strings.IndexAny(authority, "/?#"); i >= 0 {
		authority = authority[:i]
	}
	if strings.ContainsAny(authority, "%@\\") {
		return nil, addressErrorf("the host %q must not contain %%, @ or \\", authority)
	}

	if err := checkPort(u.Port()); err != nil {
		return nil, err
	}
	addr, literal, err := parseHost(u.Host, u.Hostname())
	if err != nil {
		return nil, err
	}
	if literal {
		if err := p.CheckAddr(addr); err != nil {
			return nil, err
		}
	}
	if u.Scheme == "http" {
		if !p.AllowInsecureLoopback {
			return nil, addressErrorf("the URL must use https, not http")
		}
		if !literal || !addr.Unmap().IsLoopback() {
			return nil, addressErrorf("plain http is allowed only to a loopback IP address such as 127.0.0.1; use https")
		}
	}
	return u, nil
}

// CheckURL checks raw with ParseURL and then checks every address its
// host resolves to.
func (p AddressPolicy) CheckURL(ctx context.Context, raw string) (*url.URL, error) {
	u, err := p.ParseURL(raw)
	if err != nil {
		return nil, err
	}
	if _, err := p.resolve(ctx, u.Hostname()); err != nil {
		return nil, err
	}
	return u, nil
}

func checkPort(port string) error {
	if port == "" {
		return nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '0' {
		return addressErrorf("the port %q must be a number from 1 to 65535", port)
	}
	return nil
}

// parseHost returns the IP address of a literal host, or checks that host
// is a plain DNS name. hostport is the URL's host with brackets and port,
// hostname is without them.
//
// netip accepts only canonical IP text (dotted decimal IPv4 without
// leading zeros, and IPv6), so the other IPv4 notations that resolvers
// and browsers accept (2130706433, 0177.0.0.1, 0x7f.1, 127.1) do not parse
// as IP addresses here. They are rejected as names, because a DNS name
// whose last label is a number is not a valid host name.
func parseHost(hostport, hostname string) (netip.Addr, bool, error) {
	if hostname == "" {
		return netip.Addr{}, false, addressErrorf("the URL has no host")
	}
	if strings.HasPrefix(hostport, "[") {
		addr, err := netip.ParseAddr(hostname)
		if err != nil || !addr.Is6() {
			return netip.Addr{}, false, addressErrorf("the host [%s] is not an IPv6 address", hostname)
		}
		if addr.Zone() != "" {
			return netip.Addr{}, false, addressErrorf("the IPv6 address [%s] must not have a zone", hostname)
		}
		return addr, true, nil
	}

	name := strings.ToLower(hostname)
	if addr, err := netip.ParseAddr(name); err == nil && addr.Is4() {
		return addr, true, nil
	}
	if err := checkHostName(name); err != nil {
		return netip.Addr{}, false, err
	}
	return netip.Addr{}, false, nil
}

// checkHostName checks that name, lowercased, is a DNS host name of
// letters, digits and hyphens whose last label is not numeric.
func checkHostName(name string) error {
	trimmed := strings.TrimSuffix(name, ".")
	if trimmed == "" || len(trimmed) > 253 {
		return addressErrorf("the host %q is not a valid host name", name)
	}
	labels := strings.Split(trimmed, ".")
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return addressErrorf("the host %q is not a valid host name", name)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return addressErrorf("the host %q is not a valid host name; use letters, digits, hyphens and dots (punycode for other scripts)", name)
			}
		}
	}
	if last := labels[len(labels)-1]; isNumericLabel(last) {
		return addressErrorf("the host %q is not a canonical IP address or a host name; write IPv4 addresses as four decimal numbers, such as 203.0.114.7", name)
	}
	return nil
}

// isNumericLabel reports whether a label reads as a number in any of the
// notations that IPv4 parsers accept: decimal, octal or hexadecimal.
func isNumericLabel(label string) bool {
	if rest, ok := strings.CutPrefix(label, "0x"); ok {
		return strings.Trim(rest, "0123456789abcdef") == ""
	}
	return strings.Trim(label, "0123456789") == ""
}

// resolve returns the addresses of a host: the address of an IP literal,
// or every address a DNS lookup returns. It fails when any address breaks
// the policy, so a name that resolves to one public and one private
// address is rejected.
func (p AddressPolicy) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	addr, literal, err := parseHost(bracketIPv6(host), host)
	if err != nil {
		return nil, err
	}
	if literal {
		if err := p.CheckAddr(addr); err != nil {
			return nil, err
		}
		return []netip.Addr{addr.Unmap()}, nil
	}

	resolver := p.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	addrs, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, addressErrorf("the host %q could not be resolved: %v", host, err)
	}
	if len(addrs) == 0 {
		return nil, addressErrorf("the host %q has no IP address", host)
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if err := p.CheckAddr(a); err != nil {
			return nil, addressErrorf("the host %q resolves to %s: %v", host, a, err)
		}
		out = append(out, a.Unmap())
	}
	return out, nil
}

// bracketIPv6 returns host in brackets when it contains a colon, as
// net.SplitHostPort removes them from IPv6 literals.
func bracketIPv6(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// CheckAddr returns an *AddressError when deliveries may not connect to
// addr.
func (p AddressPolicy) CheckAddr(addr netip.Addr) error {
	if addr.Zone() != "" {
		return addressErrorf("%s has an IPv6 zone", addr)
	}
	if addr.Is4In6() {
		return checkIPv4(addr.Unmap(), p.AllowInsecureLoopback)
	}
	if addr.Is4() {
		return checkIPv4(addr, p.AllowInsecureLoopback)
	}
	return checkIPv6(addr, p.AllowInsecureLoopback)
}

// blockedPrefix is a range of addresses that deliveries never reach.
type blockedPrefix struct {
	prefix netip.Prefix
	kind   string
}

// blockedIPv4 lists the IPv4 ranges that are not public unicast space,
// from the IANA IPv4 Special-Purpose Address Registry. Loopback is checked
// separately, because AllowInsecureLoopback allows it.
var blockedIPv4 = []blockedPrefix{
	{netip.MustParsePrefix("169.254.169.254/32"), "a cloud metadata address"},
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified (\"this network\") address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol assignment address"},
	{netip.MustParsePrefix("192.0.2.0/24"), "a documentation address"},
	{netip.MustParsePrefix("192.88.99.0/24"), "a 6to4 relay anycast address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("198.51.100.0/24"), "a documentation address"},
	{netip.MustParsePrefix("203.0.113.0/24"), "a documentation address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved or broadcast address"},
}

// blockedIPv6 lists the IPv6 ranges inside global unicast space (2000::/3)
// that are not public, and the metadata address, from the IANA IPv6
// Special-Purpose Address Registry. Everything outside 2000::/3 is
// rejected as well, apart from the NAT64 prefix, whose embedded IPv4
// address is checked instead.
var blockedIPv6 = []blockedPrefix{
	{netip.MustParsePrefix("fd00:ec2::254/128"), "a cloud metadata address"},
	{netip.MustParsePrefix("2001::/23"), "an IETF protocol assignment address (Teredo, benchmarking and others)"},
	{netip.MustParsePrefix("2001:db8::/32"), "a documentation address"},
	{netip.MustParsePrefix("3fff::/20"), "a documentation address"},
	{netip.MustParsePrefix("5f00::/16"), "a segment routing address"},
}

var (
	globalUnicastIPv6 = netip.MustParsePrefix("2000::/3")
	nat64IPv6         = netip.MustParsePrefix("64:ff9b::/96")
	sixToFourIPv6     = netip.MustParsePrefix("2002::/16")
	compatibleIPv6    = netip.MustParsePrefix("::/96")
)

func checkIPv4(addr netip.Addr, allowLoopback bool) error {
	if addr.IsLoopback() {
		if allowLoopback {
			return nil
		}
		return addressErrorf("%s is a loopback address", addr)
	}
	for _, b := range blockedIPv4 {
		if b.prefix.Contains(addr) {
			return addressErrorf("%s is %s", addr, b.kind)
		}
	}
	return nil
}

func checkIPv6(addr netip.Addr, allowLoopback bool) error {
	switch {
	case addr.IsLoopback():
		if allowLoopback {
			return nil
		}
		return addressErrorf("%s is a loopback address", addr)
	case addr.IsUnspecified():
		return addressErrorf("%s is the unspecified address", addr)
	case compatibleIPv6.Contains(addr):
		return addressErrorf("%s is an IPv4-compatible IPv6 address", addr)
	case nat64IPv6.Contains(addr):
		// The embedded IPv4 address is what a NAT64 gateway connects to,
		// and loopback through a gateway is never allowed.
		b := addr.As16()
		if err := checkIPv4(netip.AddrFrom4([4]byte(b[12:16])), false); err != nil {
			return addressErrorf("%s is a NAT64 form of a blocked address: %v", addr, err)
		}
		return nil
	case sixToFourIPv6.Contains(addr):
		b := addr.As16()
		if err := checkIPv4(netip.AddrFrom4([4]byte(b[2:6])), false); err != nil {
			return addressErrorf("%s is a 6to4 form of a blocked address: %v", addr, err)
		}
		return nil
	}
	for _, b := range blockedIPv6 {
		if b.prefix.Contains(addr) {
			return addressErrorf("%s is %s", addr, b.kind)
		}
	}
	if !globalUnicastIPv6.Contains(addr) {
		return addressErrorf("%s is not a public unicast address (private, link-local, multicast or reserved)", addr)
	}
	return nil
}

// DialContext connects to address ("host:port") as an HTTP transport's
// dialer. It resolves the host once, checks every address it resolves to
// and dials only those checked addresses, one after another until one
// connects. The dialer's Control function checks the address of each
// connection again, just before connecting.
func (p AddressPolicy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dial %s: invalid port: %w", address, err)
	}
	addrs, err := p.resolve(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}

	dialer := net.Dialer{Control: p.control}
	var errs []error
	for _, a := range addrs {
		conn, err := dialer.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("dial %s: %w", address, errors.Join(errs...))
}

// control checks the address that a socket is about to connect to.
func (p AddressPolicy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return addressErrorf("connection address %q does not parse: %v", address, err)
	}
	return p.CheckAddr(ap.Addr())
}

package webhooks

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func wantAddressError(t *testing.T, err error, contains string) {
	t.Helper()
	var addrErr *AddressError
	if !errors.As(err, &addrErr) {
		t.Fatalf("error = %v; want an *AddressError", err)
	}
	if contains != "" && !strings.Contains(addrErr.Reason, contains) {
		t.Errorf("reason = %q; want it to contain %q", addrErr.Reason, contains)
	}
}

func TestParseURLRejectsLoopbackInEveryNotation(t *testing.T) {
	// Each host means 127.0.0.1 or ::1 to some parser. https is used so
	// that the host, not the scheme, is what gets the URL rejected.
	tests := []struct {
		name, url, reason string
	}{
		{"decimal", "https://2130706433/hook", "not a canonical IP"},
		{"octal", "https://0177.0.0.1/hook", "not a canonical IP"},
		{"hex short", "https://0x7f.1/hook", "not a canonical IP"},
		{"hex whole", "https://0x7f000001/hook", "not a canonical IP"},
		{"short", "https://127.1/hook", "not a canonical IP"},
		{"leading zero", "https://127.000.000.001/hook", "not a canonical IP"},
		{"trailing dot", "https://127.0.0.1./hook", "not a canonical IP"},
		{"dotted decimal", "https://127.0.0.1/hook", "loopback"},
		{"other loopback", "https://127.8.9.10/hook", "loopback"},
		{"IPv6", "https://[::1]/hook", "loopback"},
		{"IPv6 long form", "https://[0:0:0:0:0:0:0:1]/hook", "loopback"},
		{"IPv4-mapped IPv6", "https://[::ffff:127.0.0.1]/hook", "loopback"},
		{"IPv4-mapped IPv6 hex", "https://[::ffff:7f00:1]/hook", "loopback"},
		{"IPv4-compatible IPv6", "https://[::127.0.0.1]/hook", "IPv4-compatible"},
		{"NAT64", "https://[64:ff9b::7f00:1]/hook", "NAT64"},
		{"6to4", "https://[2002:7f00:1::1]/hook", "6to4"},
		{"percent-encoded", "https://%31%32%37.0.0.1/hook", "does not parse"},
		{"http decimal", "http://2130706433/hook", ""},
		{"http octal", "http://0177.0.0.1/hook", ""},
		{"http hex", "http://0x7f.1/hook", ""},
		{"http short", "http://127.1/hook", ""},
		{"http mapped", "http://[::ffff:127.0.0.1]/hook", ""},
		{"http IPv6", "http://[::1]/hook", ""},
	}
	policy := AddressPolicy{Resolver: newFakeResolver()}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.ParseURL(tt.url)
			wantAddressError(t, err, tt.reason)
		})
	}
}

func TestParseURLRejectsNonPublicAddresses(t *testing.T) {
	tests := []struct {
		name, host, reason string
	}{
		{"private 10", "10.1.2.3", "private"},
		{"private 172", "172.16.0.1", "private"},
		{"private 192", "192.168.1.1", "private"},
		{"carrier-grade NAT", "100.64.0.1", "carrier-grade NAT"},
		{"metadata", "169.254.169.254", "metadata"},
		{"link-local", "169.254.10.1", "link-local"},
		{"unspecified", "0.0.0.0", "unspecified"},
		{"this network", "0.1.2.3", "unspecified"},
		{"multicast", "224.0.0.1", "multicast"},
		{"broadcast", "255.255.255.255", "broadcast"},
		{"reserved", "240.0.0.1", "reserved"},
		{"documentation 1", "192.0.2.10", "documentation"},
		{"documentation 2", "198.51.100.10", "documentation"},
		{"documentation 3", "203.0.113.10", "documentation"},
		{"benchmarking", "198.18.5.5", "benchmarking"},
		{"IETF protocol assignments", "192.0.0.8", "IETF"},
		{"IPv6 metadata", "[fd00:ec2::254]", "metadata"},
		{"IPv6 unique local", "[fd12:3456::1]", "not a public unicast"},
		{"IPv6 link-local", "[fe80::1]", "not a public unicast"},
		{"IPv6 site-local", "[fec0::1]", "not a public unicast"},
		{"IPv6 multicast", "[ff02::1]", "not a public unicast"},
		{"IPv6 unspecified", "[::]", "unspecified"},
		{"IPv6 documentation", "[2001:db8::1]", "documentation"},
		{"IPv6 documentation 3fff", "[3fff::1]", "documentation"},
		{"IPv6 benchmarking", "[2001:2::1]", "IETF protocol assignment"},
		{"Teredo", "[2001::1]", "IETF protocol assignment"},
		{"discard-only", "[100::1]", "not a public unicast"},
		{"local-use NAT64", "[64:ff9b:1::a00:1]", "not a public unicast"},
		{"mapped private", "[::ffff:10.0.0.1]", "private"},
		{"mapped metadata", "[::ffff:169.254.169.254]", "metadata"},
		{"mapped carrier-grade NAT", "[::ffff:100.64.1.1]", "carrier-grade NAT"},
		{"mapped documentation", "[::ffff:192.0.2.1]", "documentation"},
		{"compatible private", "[::10.0.0.1]", "IPv4-compatible"},
		{"NAT64 private", "[64:ff9b::a00:1]", "NAT64"},
		{"NAT64 metadata", "[64:ff9b::a9fe:a9fe]", "NAT64"},
		{"SIIT translated", "[::ffff:0:a00:1]", "not a public unicast"},
		{"6to4 private", "[2002:c0a8:101::1]", "6to4"},
	}
	policy := AddressPolicy{Resolver: newFakeResolver()}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.ParseURL("https://" + tt.host + "/hook")
			wantAddressError(t, err, tt.reason)
		})
	}
}

func TestParseURLRejectsMalformedURLs(t *testing.T) {
	tests := []struct {
		name, url, reason string
	}{
		{"http to a public host", "http://example.com/hook", "https"},
		{"ftp", "ftp://example.com/hook", "https"},
		{"no scheme", "//example.com/hook", "https"},
		{"relative", "/hook", "https"},
		{"opaque", "https:example.com", "absolute"},
		{"user and password", "https://user:pass@example.com/hook", "user name or password"},
		{"user only", "https://user@example.com/hook", "user name or password"},
		{"fragment", "https://example.com/hook#part", "fragment"},
		{"empty fragment", "https://example.com/hook#", "fragment"},
		{"no host", "https:///hook", "no host"},
		{"port zero", "https://example.com:0/hook", "port"},
		{"port too large", "https://example.com:70000/hook", "port"},
		{"port with leading zero", "https://example.com:0443/hook", "port"},
		{"underscore", "https://under_score.example.com/hook", "not a valid host name"},
		{"leading hyphen", "https://-bad.example.com/hook", "not a valid host name"},
		{"empty label", "https://bad..example.com/hook", "not a valid host name"},
		{"unicode", "https://bücher.example/hook", "not a valid host name"},
		{"numeric last label", "https://example.123/hook", "not a canonical IP"},
		{"IPv6 zone", "https://[fe80::1%25eth0]/hook", "must not contain %"},
		{"backslash", "https://example.com\\@127.0.0.1/hook", ""},
		{"too long", "https://example.com/" + strings.Repeat("a", maxURLLength), "maximum"},
	}
	policy := AddressPolicy{Resolver: newFakeResolver()}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.ParseURL(tt.url)
			wantAddressError(t, err, tt.reason)
		})
	}
}

func TestParseURLAcceptsPublicURLs(t *testing.T) {
	for _, raw := range []string{
		"https://example.com/hook",
		"https://Hooks.Example.COM:8443/a/b?c=d",
		"https://example.com./hook",
		"https://xn--bcher-kva.example/hook",
		"https://93.184.215.14/hook",
		"https://[2606:4700:4700::1111]/hook",
		"https://[::ffff:8.8.8.8]/hook",
		"https://[64:ff9b::808:808]/hook",
		"https://[2002:808:808::1]/hook",
	} {
		t.Run(raw, func(t *testing.T) {
			if _, err := (AddressPolicy{}).ParseURL(raw); err != nil {
				t.Errorf("ParseURL(%q) = %v; want no error", raw, err)
			}
		})
	}
}

func TestParseURLLoopbackNeedsFlag(t *testing.T) {
	tests := []struct {
		url     string
		allowed bool
	}{
		{"http://127.0.0.1:8080/hook", true},
		{"https://127.0.0.1:8443/hook", true},
		{"http://[::1]:8080/hook", true},
		{"http://[::ffff:127.0.0.1]:8080/hook", true},
		{"http://localhost:8080/hook", false},
		{"http://example.com/hook", false},
		{"http://93.184.215.14/hook", false},
		{"http://10.0.0.1/hook", false},
		{"https://10.0.0.1/hook", false},
		{"http://[64:ff9b::7f00:1]/hook", false},
	}
	on := AddressPolicy{AllowInsecureLoopback: true}
	off := AddressPolicy{}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := on.ParseURL(tt.url)
			if tt.allowed && err != nil {
				t.Errorf("with AllowInsecureLoopback: %v; want no error", err)
			}
			if !tt.allowed {
				wantAddressError(t, err, "")
			}
			_, err = off.ParseURL(tt.url)
			wantAddressError(t, err, "")
		})
	}
}

func TestCheckURLChecksEveryResolvedAddress(t *testing.T) {
	r := newFakeResolver()
	r.set("public.example", "93.184.215.14", "2606:4700:4700::1111")
	r.set("internal.example", "10.0.0.5")
	r.set("metadata.example", "169.254.169.254")
	r.set("mixed.example", "93.184.215.14", "192.168.0.1")
	r.set("loopback.example", "127.0.0.1")
	r.set("mapped.example", "::ffff:127.0.0.1")
	r.set("v6private.example", "fd00::1")
	r.set("v6metadata.example", "fd00:ec2::254")
	r.set("empty.example")
	policy := AddressPolicy{Resolver: r}

	tests := []struct {
		host, reason string
	}{
		{"internal.example", "private"},
		{"metadata.example", "metadata"},
		{"mixed.example", "192.168.0.1"},
		{"loopback.example", "loopback"},
		{"mapped.example", "loopback"},
		{"v6private.example", "not a public unicast"},
		{"v6metadata.example", "metadata"},
		{"empty.example", "no IP address"},
		{"missing.example", "could not be resolved"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			_, err := policy.CheckURL(context.Background(), "https://"+tt.host+"/hook")
			wantAddressError(t, err, tt.reason)
			if n := r.lookupCount(tt.host); n != 1 {
				t.Errorf("lookups of %s = %d; want 1", tt.host, n)
			}
		})
	}

	if _, err := policy.CheckURL(context.Background(), "https://public.example/hook"); err != nil {
		t.Errorf("public.example: %v; want no error", err)
	}
	if _, err := policy.CheckURL(context.Background(), "https://93.184.215.14/hook"); err != nil {
		t.Errorf("public literal: %v; want no error", err)
	}
	if n := r.lookupCount("93.184.215.14"); n != 0 {
		t.Errorf("lookups of an IP literal = %d; want 0", n)
	}
}

// acceptCounter listens on 127.0.0.1 and counts the connections it accepts.
func acceptCounter(t *testing.T) (net.Listener, func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conn.Close()
		}
	}()
	return ln, func() int {
		time.Sleep(50 * time.Millisecond) // let Accept count a connection in flight
		return int(accepted.Load())
	}
}

func TestDialContextRefusesNameThatResolvesToLoopback(t *testing.T) {
	ln, accepted := acceptCounter(t)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	r := newFakeResolver()
	r.set("rebind.example", "127.0.0.1")
	policy := AddressPolicy{Resolver: r}

	conn, err := policy.DialContext(context.Background(), "tcp", net.JoinHostPort("rebind.example", port))
	if err == nil {
		conn.Close()
		t.Fatal("dial succeeded; want the loopback address refused")
	}
	wantAddressError(t, err, "loopback")
	if n := accepted(); n != 0 {
		t.Errorf("listener accepted %d connections; want 0", n)
	}
}

func TestDialContextDialsCheckedAddressAfterOneLookup(t *testing.T) {
	ln, accepted := acceptCounter(t)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	r := newFakeResolver()
	r.set("receiver.example", "127.0.0.1")
	policy := AddressPolicy{AllowInsecureLoopback: true, Resolver: r}

	conn, err := policy.DialContext(context.Background(), "tcp", net.JoinHostPort("receiver.example", port))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if got := conn.RemoteAddr().String(); got != ln.Addr().String() {
		t.Errorf("connected to %s; want %s", got, ln.Addr())
	}
	if n := r.lookupCount("receiver.example"); n != 1 {
		t.Errorf("lookups = %d; want exactly 1", n)
	}
	if n := accepted(); n != 1 {
		t.Errorf("listener accepted %d connections; want 1", n)
	}
}

func TestDialContextRefusesLiteralAddresses(t *testing.T) {
	policy := AddressPolicy{Resolver: newFakeResolver()}
	for _, addr := range []string{"127.0.0.1:443", "[::1]:443", "[::ffff:127.0.0.1]:443", "169.254.169.254:80", "0177.0.0.1:443"} {
		t.Run(addr, func(t *testing.T) {
			conn, err := policy.DialContext(context.Background(), "tcp", addr)
			if err == nil {
				conn.Close()
				t.Fatal("dial succeeded; want it refused")
			}
			wantAddressError(t, err, "")
		})
	}
}

func TestControlChecksConnectionAddress(t *testing.T) {
	policy := AddressPolicy{}
	for _, addr := range []string{"10.0.0.1:443", "127.0.0.1:80", "[fd00:ec2::254]:80", "[::ffff:169.254.169.254]:80"} {
		if err := policy.control("tcp", addr, nil); err == nil {
			t.Errorf("control(%s) = nil; want an error", addr)
		}
	}
	if err := policy.control("tcp", "93.184.215.14:443", nil); err != nil {
		t.Errorf("control(public) = %v; want nil", err)
	}
}

func TestCheckAddrUnmapsIPv4InIPv6(t *testing.T) {
	on := AddressPolicy{AllowInsecureLoopback: true}
	if err := on.CheckAddr(netip.MustParseAddr("::ffff:127.0.0.1")); err != nil {
		t.Errorf("mapped loopback with the flag on: %v; want nil", err)
	}
	if err := on.CheckAddr(netip.MustParseAddr("::ffff:10.0.0.1")); err == nil {
		t.Error("mapped private with the flag on: nil; want an error")
	}
}

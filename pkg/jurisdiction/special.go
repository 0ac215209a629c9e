package jurisdiction

import "net/netip"

// specialRange is an address block whose addresses never locate a person:
// they are not routed on the Internet (private, loopback, link-local,
// documentation, benchmarking, reserved), are shared by many subscribers
// behind one gateway (carrier-grade NAT), reach groups rather than hosts
// (multicast), or belong to relays and translators (6to4, Teredo, NAT64)
// whose location is the relay's, not the user's.
type specialRange struct {
	prefix netip.Prefix
	name   string
}

// specialRanges follows the IANA IPv4 and IPv6 Special-Purpose Address
// Registries (RFC 6890 and its updates). IPv6 outside 2000::/3 (global
// unicast) is special as a whole: see special.
var specialRanges = func() []specialRange {
	list := []struct{ prefix, name string }{
		// IPv4.
		{"0.0.0.0/8", "this network and unspecified (RFC 791)"},
		{"10.0.0.0/8", "private-use (RFC 1918)"},
		{"100.64.0.0/10", "carrier-grade NAT shared address space (RFC 6598)"},
		{"127.0.0.0/8", "loopback (RFC 1122)"},
		{"169.254.0.0/16", "link-local (RFC 3927)"},
		{"172.16.0.0/12", "private-use (RFC 1918)"},
		{"192.0.0.0/24", "IETF protocol assignments (RFC 6890)"},
		{"192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)"},
		{"192.31.196.0/24", "AS112 (RFC 7535)"},
		{"192.52.193.0/24", "AMT relay (RFC 7450)"},
		{"192.88.99.0/24", "6to4 relay anycast (RFC 7526)"},
		{"192.168.0.0/16", "private-use (RFC 1918)"},
		{"192.175.48.0/24", "AS112 direct delegation (RFC 7534)"},
		{"198.18.0.0/15", "benchmarking (RFC 2544)"},
		{"198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)"},
		{"203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)"},
		{"224.0.0.0/4", "multicast (RFC 5771)"},
		{"240.0.0.0/4", "reserved and limited broadcast (RFC 1112, RFC 919)"},
		// IPv6 inside 2000::/3.
		{"2001::/32", "Teredo relay (RFC 4380)"},
		{"2001::/23", "IETF protocol assignments (RFC 2928)"},
		{"2001:db8::/32", "documentation (RFC 3849)"},
		{"2002::/16", "6to4 relay (RFC 3056)"},
		{"3fff::/20", "documentation (RFC 9637)"},
		// IPv6 outside 2000::/3, named for explanations.
		{"::/128", "unspecified (RFC 4291)"},
		{"::1/128", "loopback (RFC 4291)"},
		{"64:ff9b::/96", "NAT64 translator (RFC 6052)"},
		{"64:ff9b:1::/48", "NAT64 local-use translator (RFC 8215)"},
		{"100::/64", "discard-only (RFC 6666)"},
		{"5f00::/16", "SRv6 segment identifiers (RFC 9602)"},
		{"fc00::/7", "unique local (RFC 4193)"},
		{"fe80::/10", "link-local (RFC 4291)"},
		{"fec0::/10", "site-local, deprecated (RFC 3879)"},
		{"ff00::/8", "multicast (RFC 4291)"},
	}
	out := make([]specialRange, len(list))
	for i, r := range list {
		out[i] = specialRange{netip.MustParsePrefix(r.prefix), r.name}
	}
	return out
}()

var globalUnicast = netip.MustParsePrefix("2000::/3")

// special reports whether addr can never locate a person, and if so names
// the range ("10.0.0.0/8 private-use (RFC 1918)"). The first, most specific
// matching entry names it. IPv4-mapped IPv6 addresses are judged as the
// IPv4 address they map.
func special(addr netip.Addr) (string, bool) {
	addr = addr.Unmap()
	for _, r := range specialRanges {
		if r.prefix.Contains(addr) {
			return r.prefix.String() + " " + r.name, true
		}
	}
	if addr.Is6() && !globalUnicast.Contains(addr) {
		return "outside 2000::/3, not global unicast (RFC 4291)", true
	}
	return "", false
}

//! Which IP addresses an outbound call may reach (SPEC §8 SSRF rules).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused, or `None` if it is a public unicast address.
pub fn blocked_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "unspecified / this network"),
        ([10, 0, 0, 0], 8, "private network"),
        ([100, 64, 0, 0], 10, "carrier-grade NAT"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local (includes cloud metadata)"),
        ([172, 16, 0, 0], 12, "private network"),
        ([192, 0, 0, 0], 24, "IETF protocol assignments"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([192, 88, 99, 0], 24, "6to4 relay anycast"),
        ([192, 168, 0, 0], 16, "private network"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved (includes broadcast)"),
    ];
    RANGES
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

fn embedded_v4(seg: &[u16; 8], from: usize) -> Ipv4Addr {
    let hi = seg[from].to_be_bytes();
    let lo = seg[from + 1].to_be_bytes();
    Ipv4Addr::new(hi[0], hi[1], lo[0], lo[1])
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // IPv4-mapped ::ffff:a.b.c.d: judge the IPv4 address.
    if s[..6] == [0, 0, 0, 0, 0, 0xffff] {
        return v4_reason(embedded_v4(&s, 6)).map(|_| "IPv4-mapped form of a blocked IPv4 address");
    }
    // IPv4-compatible ::a.b.c.d is deprecated and never a legitimate target.
    if s[..6] == [0; 6] {
        return Some("IPv4-compatible (deprecated)");
    }
    // NAT64 well-known prefix 64:ff9b::/96 embeds an IPv4 address.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_reason(embedded_v4(&s, 6)).map(|_| "NAT64 form of a blocked IPv4 address");
    }
    // 6to4 2002:AABB:CCDD::/48 embeds an IPv4 address.
    if s[0] == 0x2002 {
        return v4_reason(embedded_v4(&s, 1)).map(|_| "6to4 form of a blocked IPv4 address");
    }
    let first = s[0];
    match () {
        () if first & 0xfe00 == 0xfc00 => Some("unique local address"),
        () if first & 0xffc0 == 0xfe80 => Some("link-local"),
        () if first & 0xffc0 == 0xfec0 => Some("site-local"),
        () if first & 0xff00 == 0xff00 => Some("multicast"),
        () if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 => Some("local-use NAT64"),
        () if s[0] == 0x2001 && s[1] == 0x0db8 => Some("documentation"),
        () if s[0] == 0x2001 && s[1] == 0 => Some("Teredo tunnel"),
        () if s[0] == 0x2001 && s[1] == 2 && s[2] == 0 => Some("benchmarking"),
        () if s[0] == 0x2001 && (s[1] & 0xfff0 == 0x10 || s[1] & 0xfff0 == 0x20) => Some("ORCHID"),
        () if s[..4] == [0x100, 0, 0, 0] => Some("discard-only"),
        () if s[0] == 0x3fff && s[1] & 0xf000 == 0 => Some("documentation"),
        () => None,
    }
}

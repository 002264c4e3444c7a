//! Web Push endpoints are URLs that users hand us, so every request to one is a request the
//! user chose: without these checks a subscription could make the server POST to its own
//! loopback admin ports, the cloud metadata service or anything else on the private network.
//!
//! Three layers, because each alone has a gap:
//! - [`check_endpoint`] at subscribe time (syntax, `https`, every resolved address public), so a
//!   bad endpoint is refused with a 400 before anything is stored;
//! - [`PublicOnlyResolver`] inside the sending client, so a DNS answer that changes between
//!   subscribe and send (rebinding) still cannot reach a private address;
//! - [`check_syntax`] before each send, because the resolver is never consulted for IP literals.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderValue;

/// Longer endpoints are refused: real push services use well under 1 KiB, and the endpoint is
/// stored and indexed.
pub const MAX_ENDPOINT_LEN: usize = 2048;

/// How long a subscribe-time DNS lookup may take before the endpoint counts as unresolvable.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an endpoint was refused. Deliberately carries no part of the URL: the endpoint is a
/// capability (whoever knows it can push to the device), so it must not end up in responses or
/// logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointError {
    TooLong,
    Invalid,
    Scheme,
    Userinfo,
    NoHost,
    Unresolvable,
    NotPublic,
}

impl EndpointError {
    /// A short, fixed explanation, safe for an API error message.
    pub fn reason(self) -> &'static str {
        match self {
            EndpointError::TooLong => "endpoint is too long",
            EndpointError::Invalid => "endpoint is not a valid URL",
            EndpointError::Scheme => "endpoint must use https",
            EndpointError::Userinfo => "endpoint must not contain credentials",
            EndpointError::NoHost => "endpoint has no host",
            EndpointError::Unresolvable => "endpoint host does not resolve",
            EndpointError::NotPublic => "endpoint resolves to a non-public address",
        }
    }
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl StdError for EndpointError {}

/// Whether `ip` is an address on the public internet, i.e. one a push service can have.
///
/// Everything else — loopback, private and shared (CGNAT) ranges, link-local, multicast,
/// documentation and benchmarking ranges, reserved space — is refused, and so are IPv6 forms
/// that embed an IPv4 address (mapped, compatible, NAT64, 6to4) unless the embedded address is
/// public itself, since a NAT64 gateway or dual stack socket would take them to it.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// IPv4 ranges that are never a push service (the IANA special-purpose registry, RFC 6890,
/// less the globally reachable entries, plus multicast and reserved space).
const V4_REFUSED: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network"
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // shared address space (CGNAT)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local (cloud metadata services)
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, and the broadcast address
];

/// IPv6 ranges inside global unicast (2000::/3) that are never a push service. Everything
/// outside 2000::/3 is refused anyway: ::/128, ::1, the discard prefix 100::/64, unique-local
/// fc00::/7, link-local fe80::/10, site-local fec0::/10, multicast ff00::/8, SRv6 5f00::/16
/// and all reserved space.
const V6_REFUSED: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments (Teredo, benchmarking, ORCHID)
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation (RFC 9637)
];

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    !V4_REFUSED
        .iter()
        .any(|&(net, len)| prefix_match(bits.into(), u32::from(net).into(), len, 32))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let bits = u128::from(ip);
    let global_unicast = prefix_match(bits, 0x2000 << 112, 3, 128);
    global_unicast
        && !V6_REFUSED
            .iter()
            .any(|&(net, len)| prefix_match(bits, u128::from(net), len, 128))
}

/// Whether the first `len` of the `width` low bits of `addr` and `net` agree.
fn prefix_match(addr: u128, net: u128, len: u8, width: u32) -> bool {
    let shift = width - u32::from(len);
    (addr ^ net).checked_shr(shift).unwrap_or(0) == 0
}

/// The IPv4 address that traffic to `ip` ends up at, for the forms that carry one:
/// IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d` (deprecated; `::` and `::1` are
/// not such addresses), NAT64 `64:ff9b::a.b.c.d` and 6to4 `2002:aabb:ccdd::/48`. The
/// local-use NAT64 prefix `64:ff9b:1::/48` maps to a deployment's own choice of addresses, so
/// it stands for a non-public one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x64, 0xff9b, 1, ..] => Some(Ipv4Addr::UNSPECIFIED),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

/// The checks that need no DNS: length, syntax, scheme, no userinfo, a host, and for an IP
/// literal host a public address. Run before every send, since [`PublicOnlyResolver`] never
/// sees IP literals.
pub fn check_syntax(url: &str, allow_insecure: bool) -> Result<Url, EndpointError> {
    if url.len() > MAX_ENDPOINT_LEN {
        return Err(EndpointError::TooLong);
    }
    let parsed = Url::parse(url).map_err(|_| EndpointError::Invalid)?;
    match (parsed.scheme(), allow_insecure) {
        ("https", _) | ("http", true) => {}
        _ => return Err(EndpointError::Scheme),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(EndpointError::Userinfo);
    }
    // A header value is what reqwest will send as the request line; refusing here keeps the
    // later request building infallible.
    if HeaderValue::from_str(parsed.as_str()).is_err() {
        return Err(EndpointError::Invalid);
    }
    let literal = match parsed.host() {
        None => return Err(EndpointError::NoHost),
        Some(url::Host::Domain(_)) => None,
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    if let Some(ip) = literal
        && !allow_insecure
        && !is_public(ip)
    {
        return Err(EndpointError::NotPublic);
    }
    Ok(parsed)
}

/// Validates a Web Push endpoint at subscribe time.
///
/// Without `allow_insecure`: `https` only, and the host must resolve, with every address it
/// resolves to public (one private answer among public ones is enough to refuse: an attacker
/// controls the order). With `allow_insecure` (tests, private gateways): `http` too and any
/// address, nothing is resolved.
pub async fn check_endpoint(url: &str, allow_insecure: bool) -> Result<Url, EndpointError> {
    let parsed = check_syntax(url, allow_insecure)?;
    if allow_insecure {
        return Ok(parsed);
    }
    if let Some(url::Host::Domain(domain)) = parsed.host() {
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addrs = lookup_public(domain, port).await?;
        if addrs.is_empty() {
            return Err(EndpointError::NotPublic);
        }
    }
    Ok(parsed)
}

/// Resolves `host` and returns its addresses if all are public: empty never (an empty answer
/// is [`EndpointError::Unresolvable`]), [`EndpointError::NotPublic`] if any is not.
async fn lookup_public(host: &str, port: u16) -> Result<Vec<SocketAddr>, EndpointError> {
    let lookup = tokio::net::lookup_host((host, port));
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(_)) | Err(_) => return Err(EndpointError::Unresolvable),
    };
    if addrs.is_empty() {
        return Err(EndpointError::Unresolvable);
    }
    if addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(EndpointError::NotPublic);
    }
    Ok(addrs)
}

/// A resolver for the Web Push client that only ever hands out public addresses, so the
/// connection goes to what [`check_endpoint`] approved even if the DNS answer changed since.
/// Non-public answers are dropped; none left is an error ([`EndpointError::NotPublic`], found
/// again in the request error's source chain by [`is_not_public_error`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let lookup = tokio::net::lookup_host((host.as_str(), 0));
            let found = tokio::time::timeout(LOOKUP_TIMEOUT, lookup)
                .await
                .map_err(|_| EndpointError::Unresolvable)?
                .map_err(|_| EndpointError::Unresolvable)?;
            let public: Vec<SocketAddr> = found.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(EndpointError::NotPublic.into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// Whether a request failed because [`PublicOnlyResolver`] refused every address: that is not
/// a transient network problem and must not be retried.
pub fn is_not_public_error(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if matches!(
            e.downcast_ref::<EndpointError>(),
            Some(EndpointError::NotPublic)
        ) {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_table() {
        let table: &[(&str, bool)] = &[
            // IPv4 public
            ("1.1.1.1", true),
            ("8.8.8.8", true),
            ("142.250.74.110", true),
            ("100.63.255.255", true),
            ("100.128.0.0", true),
            ("172.15.255.255", true),
            ("172.32.0.0", true),
            ("192.0.1.1", true),
            ("198.17.255.255", true),
            ("198.20.0.0", true),
            ("223.255.255.255", true),
            // IPv4 refused
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            ("10.0.0.1", false),
            ("10.255.255.255", false),
            ("100.64.0.1", false),
            ("100.127.255.255", false),
            ("127.0.0.1", false),
            ("127.255.255.254", false),
            ("169.254.169.254", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("192.0.0.8", false),
            ("192.0.2.1", false),
            ("192.168.1.1", false),
            ("198.18.0.1", false),
            ("198.19.255.255", false),
            ("198.51.100.7", false),
            ("203.0.113.9", false),
            ("224.0.0.1", false),
            ("239.255.255.250", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
            // IPv6 public
            ("2606:4700:4700::1111", true),
            ("2a00:1450:4001:80b::200e", true),
            ("2001:4860:4860::8888", true),
            ("::ffff:8.8.8.8", true),
            ("64:ff9b::808:808", true),
            ("2002:808:808::1", true),
            // IPv6 refused
            ("::", false),
            ("::1", false),
            ("fe80::1", false),
            ("febf::1", false),
            ("fec0::1", false),
            ("fc00::1", false),
            ("fd12:3456::1", false),
            ("ff02::1", false),
            ("ff0e::1", false),
            ("2001:db8::1", false),
            ("3fff::1", false),
            ("2001::1", false),
            ("2001:2::1", false),
            ("100::1", false),
            ("5f00::1", false),
            ("3fff:fff::1", false),
            ("3ff0::1", true),
            ("2001:200::1", true),
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.1.2.3", false),
            ("::ffff:169.254.169.254", false),
            ("::127.0.0.1", false),
            ("::10.0.0.1", false),
            ("64:ff9b::7f00:1", false),
            ("64:ff9b::a9fe:a9fe", false),
            ("64:ff9b:1::808:808", false),
            ("2002:7f00:1::1", false),
            ("2002:c0a8:101::1", false),
        ];
        for (text, want) in table {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(is_public(ip), *want, "{text}");
        }
    }

    #[test]
    fn syntax_rules() {
        let long = format!("https://push.example.com/{}", "a".repeat(MAX_ENDPOINT_LEN));
        let table: &[(&str, bool, Result<(), EndpointError>)] = &[
            ("https://push.example.com/x", false, Ok(())),
            ("https://1.1.1.1/x", false, Ok(())),
            ("https://[2606:4700::1]:8443/x", false, Ok(())),
            (
                "http://push.example.com/x",
                false,
                Err(EndpointError::Scheme),
            ),
            ("http://push.example.com/x", true, Ok(())),
            ("ftp://push.example.com/x", true, Err(EndpointError::Scheme)),
            ("file:///etc/passwd", false, Err(EndpointError::Scheme)),
            (
                "https://u:p@push.example.com/x",
                false,
                Err(EndpointError::Userinfo),
            ),
            (
                "https://u@push.example.com/x",
                true,
                Err(EndpointError::Userinfo),
            ),
            ("not a url", false, Err(EndpointError::Invalid)),
            ("https://127.0.0.1/x", false, Err(EndpointError::NotPublic)),
            ("https://127.1/x", false, Err(EndpointError::NotPublic)),
            ("https://0x7f000001/x", false, Err(EndpointError::NotPublic)),
            ("https://[::1]/x", false, Err(EndpointError::NotPublic)),
            (
                "https://[::ffff:192.168.0.1]/x",
                false,
                Err(EndpointError::NotPublic),
            ),
            (
                "https://169.254.169.254/latest",
                false,
                Err(EndpointError::NotPublic),
            ),
            ("http://127.0.0.1:9/x", true, Ok(())),
            (&long, false, Err(EndpointError::TooLong)),
        ];
        for (url, insecure, want) in table {
            let got = check_syntax(url, *insecure).map(|_| ());
            assert_eq!(&got, want, "{url} insecure={insecure}");
        }
    }

    #[tokio::test]
    async fn endpoint_resolution() {
        // Only names that resolve without a network: localhost, and a reserved TLD.
        assert_eq!(
            check_endpoint("https://localhost/push/1", false).await,
            Err(EndpointError::NotPublic)
        );
        assert_eq!(
            check_endpoint("https://no-such-host.invalid/push/1", false).await,
            Err(EndpointError::Unresolvable)
        );
        let ok = check_endpoint("http://localhost:8080/push/1", true).await;
        assert_eq!(ok.map(|u| u.port()), Ok(Some(8080)));
    }

    #[tokio::test]
    async fn resolver_drops_private_answers() {
        let name: Name = "localhost".parse().unwrap();
        let err = match PublicOnlyResolver.resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        assert!(is_not_public_error(err.as_ref()));
    }

    #[test]
    fn reasons_are_fixed_text() {
        for e in [
            EndpointError::TooLong,
            EndpointError::Invalid,
            EndpointError::Scheme,
            EndpointError::Userinfo,
            EndpointError::NoHost,
            EndpointError::Unresolvable,
            EndpointError::NotPublic,
        ] {
            assert!(!e.reason().contains("://"));
            assert_eq!(e.to_string(), e.reason());
        }
    }
}

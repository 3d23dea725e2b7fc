//! The outbound edge: which hosts Gantry may connect to, and the checks that hold it.
//!
//! Anything that names a host — an API caller, a webhook payload, an admission review, an
//! image's own base-image label — makes Gantry connect there, so the decision lives here and
//! every connection of the registry client passes it:
//!
//! - **membership**: with an allowlist ([`Egress::allowlist`]), a reference outside its rules is
//!   refused before any connection ([`Egress::check_reference`]);
//! - **address class**: a host that is not listed may only be reached on public addresses.
//!   Names are checked on the addresses they resolve to, inside the client's DNS resolver
//!   ([`CheckedResolver`]), so the checked address is the one connected to (a name that
//!   resolves to a public address for a check and to 127.0.0.1 for the connection — DNS
//!   rebinding — has nothing to exploit: there is one lookup, and it is filtered). IP literals
//!   never reach a resolver, so URLs are checked too ([`Egress::check_url`]): the first one of
//!   each request, and every redirect hop (the client's redirect policy).
//!
//! Token realms and redirect targets are hosts the registry names, not the caller: they need
//! no allowlist membership (a registry's blob CDN is not listed), only the address check.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

use gantry_model::ImageRef;
use reqwest::Url;

use crate::error::RegistryError;

/// Docker Hub's registry names: one registry for matching rules and credentials.
pub(crate) const DOCKER_HUB_HOSTS: [&str; 3] =
    ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// One rule of an allowlist: `*`, a host (`registry.example.com`, `10.0.0.5:5000`,
/// `[::1]:5000`; no port matches any port), or a host with a namespace prefix
/// (`ghcr.io/my-org` matches `ghcr.io/my-org/app`, not `ghcr.io/my-organisation/app`).
///
/// Parsed once with [`FromStr`]; the error says what is wrong with the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule(Rule);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// Every host, whatever its addresses.
    Any,
    Host {
        /// Lowercase, without brackets; Docker Hub's aliases as `docker.io`.
        host: String,
        port: Option<u16>,
        /// Repository prefix, whole components (`my-org`, `team/sub`).
        namespace: Option<String>,
    },
}

impl AllowRule {
    /// A rule for exactly the registry (host and port as written) of `image`.
    pub fn registry_of(image: &ImageRef) -> AllowRule {
        AllowRule(Rule::Host {
            host: canonical_host(image.host()),
            port: port_of(image.registry()),
            namespace: None,
        })
    }

    /// Whether this rule allows every host.
    pub fn is_any(&self) -> bool {
        matches!(self.0, Rule::Any)
    }

    fn matches_host(&self, host: &str, port: Option<u16>) -> bool {
        match &self.0 {
            Rule::Any => true,
            Rule::Host {
                host: h, port: p, ..
            } => *h == canonical_host(host) && (p.is_none() || *p == port),
        }
    }

    fn matches_name(&self, name: &str) -> bool {
        match &self.0 {
            Rule::Any => true,
            Rule::Host { host, .. } => *host == canonical_host(name),
        }
    }

    fn matches_reference(&self, image: &ImageRef) -> bool {
        if !self.matches_host(image.host(), port_of(image.registry())) {
            return false;
        }
        match &self.0 {
            Rule::Host {
                namespace: Some(ns),
                ..
            } => {
                let repo = image.repository();
                repo == ns
                    || repo
                        .strip_prefix(ns.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
            _ => true,
        }
    }
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Rule::Any => f.write_str("*"),
            Rule::Host {
                host,
                port,
                namespace,
            } => {
                if host.contains(':') {
                    write!(f, "[{host}]")?;
                } else {
                    f.write_str(host)?;
                }
                if let Some(p) = port {
                    write!(f, ":{p}")?;
                }
                if let Some(ns) = namespace {
                    write!(f, "/{ns}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for AllowRule {
    type Err = RegistryError;

    fn from_str(input: &str) -> Result<AllowRule, RegistryError> {
        let bad = |reason: &str| RegistryError::InvalidAllowRule {
            rule: input.to_string(),
            reason: reason.to_string(),
        };
        let s = input.trim();
        if s == "*" {
            return Ok(AllowRule(Rule::Any));
        }
        if s.is_empty() {
            return Err(bad("empty (write a host, host:port, host/namespace or *)"));
        }
        if s.contains("://") {
            return Err(bad(
                "write the registry without a scheme (plain HTTP is allowed with the insecure list)",
            ));
        }
        let (authority, namespace) = match s.split_once('/') {
            Some((a, ns)) => (a, Some(ns.trim_end_matches('/'))),
            None => (s, None),
        };
        let (host, port) = split_authority(authority).map_err(bad)?;
        let namespace = match namespace {
            None | Some("") => None,
            Some(ns) => {
                let component_ok = |c: &str| {
                    !c.is_empty()
                        && c.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                        })
                };
                if !ns.split('/').all(component_ok) {
                    return Err(bad(
                        "the namespace must be repository path components ([a-z0-9._-]) separated by '/'",
                    ));
                }
                Some(ns.to_string())
            }
        };
        Ok(AllowRule(Rule::Host {
            host: canonical_host(&host),
            port,
            namespace,
        }))
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` → (lowercase host without brackets, port).
fn split_authority(authority: &str) -> Result<(String, Option<u16>), &'static str> {
    let parse_port = |p: &str| match p.parse::<u16>() {
        Ok(0) | Err(_) => Err("the port must be a number from 1 to 65535"),
        Ok(n) => Ok(Some(n)),
    };
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address in '[' needs its closing ']'")?;
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err("not an IPv6 address inside '[…]'");
        }
        let port = match after {
            "" => None,
            p => parse_port(p.strip_prefix(':').ok_or("only ':port' may follow ']'")?)?,
        };
        (v6.to_string(), port)
    } else {
        if authority.parse::<Ipv6Addr>().is_ok() {
            return Err("write an IPv6 address in brackets: [::1] or [::1]:5000");
        }
        match authority.split_once(':') {
            Some((h, p)) => (h.to_string(), parse_port(p)?),
            None => (authority.to_string(), None),
        }
    };
    let host = host.to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.parse::<IpAddr>().is_err() && !(host.len() <= 253 && host.split('.').all(label_ok)) {
        return Err("not a host name or IP address");
    }
    Ok((host, port))
}

fn canonical_host(host: &str) -> String {
    let h = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if DOCKER_HUB_HOSTS.contains(&h.as_str()) {
        DOCKER_HUB_HOSTS[0].to_string()
    } else {
        h
    }
}

/// The port written in `host:port` / `[v6]:port`.
fn port_of(registry: &str) -> Option<u16> {
    let after = match registry.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map(|(_, a)| a)?,
        None => registry,
    };
    after.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

/// What kind of address an IP is, for the address check. Only [`AddressClass::Public`] is
/// reachable without listing the host.
///
/// Hand-written: std's `IpAddr::is_global` is unstable, and the crates that classify
/// addresses stop at RFC 1918 or miss the IPv6 forms that embed an IPv4 address (mapped,
/// compatible, NAT64, 6to4), which are exactly how a filter is walked around.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Globally routable.
    Public,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `169.254.0.0/16` (cloud metadata services live at 169.254.169.254), `fe80::/10`.
    LinkLocal,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), unique local `fc00::/7`, site-local
    /// `fec0::/10`, NAT64 local-use `64:ff9b:1::/48`.
    Private,
    /// Carrier-grade NAT `100.64.0.0/10` (RFC 6598).
    SharedAddressSpace,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `224.0.0.0/4`, `255.255.255.255`, `ff00::/8`.
    Multicast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// IETF protocol assignments, benchmarking, reserved, discard and tunnelling ranges
    /// (`192.0.0/24`, `198.18/15`, `240/4`, `100::/64`, `2001::/23`, …).
    Reserved,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Private => "private",
            AddressClass::SharedAddressSpace => "shared (CGNAT)",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Multicast => "multicast or broadcast",
            AddressClass::Documentation => "documentation",
            AddressClass::Reserved => "reserved",
        })
    }
}

impl AddressClass {
    /// The class of `ip`; IPv6 forms that carry an IPv4 address are classed by that address.
    pub fn of(ip: IpAddr) -> AddressClass {
        match ip {
            IpAddr::V4(v4) => class_v4(v4),
            IpAddr::V6(v6) => class_v6(v6),
        }
    }
}

fn class_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => AddressClass::Unspecified,
        (10, _, _) => AddressClass::Private,
        (100, 64..=127, _) => AddressClass::SharedAddressSpace,
        (127, _, _) => AddressClass::Loopback,
        (169, 254, _) => AddressClass::LinkLocal,
        (172, 16..=31, _) => AddressClass::Private,
        (192, 0, 0) => AddressClass::Reserved,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressClass::Documentation,
        // 6to4 relay anycast (deprecated, RFC 7526).
        (192, 88, 99) => AddressClass::Reserved,
        (192, 168, _) => AddressClass::Private,
        (198, 18..=19, _) => AddressClass::Reserved,
        (224..=239, _, _) => AddressClass::Multicast,
        _ if ip == Ipv4Addr::BROADCAST => AddressClass::Multicast,
        (240..=255, _, _) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn class_v6(ip: Ipv6Addr) -> AddressClass {
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        class_v4(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        ))
    };
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated) reach the IPv4 address.
    if s[..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || s[5] == 0) {
        return embedded(s[6], s[7]);
    }
    // NAT64 well-known prefix 64:ff9b::/96 translates to the embedded IPv4 address.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return embedded(s[6], s[7]);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return AddressClass::Private;
    }
    // 6to4 2002:V4ADDR::/48 relays to the embedded IPv4 address.
    if s[0] == 0x2002 {
        return match embedded(s[1], s[2]) {
            AddressClass::Public => AddressClass::Public,
            _ => AddressClass::Reserved,
        };
    }
    match s[0] {
        0xff00..=0xffff => AddressClass::Multicast,
        0xfe80..=0xfebf => AddressClass::LinkLocal,
        0xfec0..=0xfeff | 0xfc00..=0xfdff => AddressClass::Private,
        0x2001 if s[1] == 0x0db8 => AddressClass::Documentation,
        0x3fff if s[1] <= 0x0fff => AddressClass::Documentation,
        // 2001::/23: IETF protocol assignments (Teredo 2001::/32, benchmarking, ORCHID).
        0x2001 if s[1] <= 0x01ff => AddressClass::Reserved,
        0x0100 if s[1..4] == [0, 0, 0] => AddressClass::Reserved,
        // Everything outside 2000::/3 is unassigned or special.
        0x2000..=0x3fff => AddressClass::Public,
        _ => AddressClass::Reserved,
    }
}

/// Looks names up: the seam that lets tests decide what a name resolves to.
pub trait HostResolver: Send + Sync + fmt::Debug {
    /// The addresses `host` resolves to (any order; the port is set by the caller).
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;
}

/// The system resolver (`getaddrinfo` on tokio's blocking pool).
#[derive(Debug, Default)]
pub struct SystemResolver;

impl HostResolver for SystemResolver {
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        let host = host.to_string();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// Which hosts Gantry may connect to. Carried by [`crate::SourceOptions`]; the default is
/// [`Egress::public_only`].
#[derive(Clone)]
pub struct Egress {
    rules: Vec<AllowRule>,
    /// References must match a rule (an allowlist was given).
    restricted: bool,
    resolver: Arc<dyn HostResolver>,
}

impl fmt::Debug for Egress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Egress")
            .field(
                "rules",
                &self
                    .rules
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
            .field("restricted", &self.restricted)
            .finish_non_exhaustive()
    }
}

impl Default for Egress {
    fn default() -> Self {
        Egress::public_only()
    }
}

impl Egress {
    /// Any host whose addresses are all public; nothing on loopback, link-local or private
    /// networks.
    pub fn public_only() -> Egress {
        Egress {
            rules: Vec::new(),
            restricted: false,
            resolver: Arc::new(SystemResolver),
        }
    }

    /// Only references that match one of `rules`, and those whatever their addresses (a listed
    /// host may be on a private network). No rules: [`Egress::public_only`].
    pub fn allowlist(rules: Vec<AllowRule>) -> Egress {
        Egress {
            restricted: !rules.is_empty(),
            rules,
            ..Egress::public_only()
        }
    }

    /// For a user on their own machine (the CLI): any public host, plus the registry of the
    /// `named` image and the hosts of `extra` whatever their addresses (`--allow-registry`;
    /// `*` allows everything). A host that something else names — a base-image label — gets
    /// the public-only rule unless it is one of these.
    pub fn permissive(named: Option<&ImageRef>, extra: Vec<AllowRule>) -> Egress {
        let mut rules = extra;
        rules.extend(named.map(AllowRule::registry_of));
        Egress {
            rules,
            restricted: false,
            ..Egress::public_only()
        }
    }

    /// The same policy, looking names up with `resolver`.
    pub fn with_resolver(mut self, resolver: Arc<dyn HostResolver>) -> Egress {
        self.resolver = resolver;
        self
    }

    /// The rules, as given.
    pub fn rules(&self) -> &[AllowRule] {
        &self.rules
    }

    /// Refuses a reference outside the allowlist, before anything connects.
    pub fn check_reference(&self, image: &ImageRef) -> Result<(), RegistryError> {
        if !self.restricted || self.rules.iter().any(|r| r.matches_reference(image)) {
            return Ok(());
        }
        Err(RegistryError::RegistryNotAllowed {
            reference: image.to_string(),
            registry: image.registry().to_string(),
        })
    }

    /// Whether `host[:port]` is listed, so any address is allowed for it.
    pub(crate) fn is_listed(&self, host: &str, port: Option<u16>) -> bool {
        self.rules.iter().any(|r| r.matches_host(host, port))
    }

    /// Whether the registry of `image` is listed.
    pub(crate) fn lists_registry(&self, image: &ImageRef) -> bool {
        self.is_listed(image.host(), port_of(image.registry()))
    }

    /// Checks the host of a URL before a request goes there: an IP literal by its class; a
    /// name either listed for this port or left to the resolver's check. A listed name on a
    /// port that is not listed is refused here, since the resolver sees names without ports.
    pub(crate) fn check_url(&self, url: &Url) -> Result<(), Refused> {
        let Some(host) = url.host_str() else {
            return Err(Refused::new("(none)", "the URL has no host".to_string()));
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if self.is_listed(host, url.port()) {
            return Ok(());
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return match AddressClass::of(ip) {
                AddressClass::Public => Ok(()),
                class => Err(Refused::address(host, ip, class)),
            };
        }
        if self.rules.iter().any(|r| r.matches_name(host)) {
            return Err(Refused::new(
                host,
                format!(
                    "{host} is listed, but not for port {}",
                    url.port_or_known_default().unwrap_or(0)
                ),
            ));
        }
        Ok(())
    }

    /// Keeps the addresses `name` may be reached on: all of them for a listed name, else the
    /// public ones; none left is a refusal naming the first address.
    fn filter(&self, name: &str, addrs: Vec<IpAddr>) -> Result<Vec<IpAddr>, Refused> {
        if self.rules.iter().any(|r| r.matches_name(name)) {
            return Ok(addrs);
        }
        let mut refused = None;
        let public: Vec<IpAddr> = addrs
            .into_iter()
            .filter(|ip| match AddressClass::of(*ip) {
                AddressClass::Public => true,
                class => {
                    refused.get_or_insert((*ip, class));
                    false
                }
            })
            .collect();
        match (public.is_empty(), refused) {
            (false, Some((ip, class))) => {
                tracing::debug!(host = name, address = %ip, %class, "dropped a non-public address of a name that also has public ones");
                Ok(public)
            }
            (false, None) => Ok(public),
            (true, Some((ip, class))) => Err(Refused::address(name, ip, class)),
            (true, None) => Err(Refused::new(name, "it resolves to no address".to_string())),
        }
    }
}

/// Why the edge refused a connection (carried through reqwest's error chain and turned into
/// [`RegistryError::AddressNotAllowed`]).
#[derive(Debug, Clone, thiserror::Error)]
#[error("connection to {host} refused: {reason}")]
pub(crate) struct Refused {
    pub(crate) host: String,
    pub(crate) reason: String,
}

impl Refused {
    pub(crate) fn new(host: &str, reason: String) -> Refused {
        Refused {
            host: host.to_string(),
            reason,
        }
    }

    fn address(host: &str, ip: IpAddr, class: AddressClass) -> Refused {
        let reason = if host == ip.to_string() {
            format!("{ip} is a {class} address")
        } else {
            format!("it resolves to {ip}, a {class} address")
        };
        Refused::new(host, reason)
    }
}

/// The registry client's DNS resolver: resolves, then keeps only the addresses the policy
/// allows for the name. Connections use exactly what it returns.
#[derive(Debug)]
pub(crate) struct CheckedResolver {
    pub(crate) egress: Egress,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let egress = self.egress.clone();
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            let addrs = egress.resolver.lookup(&host).await?;
            let kept = egress.filter(&host, addrs)?;
            let addrs: reqwest::dns::Addrs =
                Box::new(kept.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Logs a token realm on another host than its registry, once per (registry, realm host) pair
/// per process. Docker Hub's `auth.docker.io` is its normal realm: logged at debug, not warned.
pub(crate) fn note_cross_host_realm(registry_host: &str, realm_host: &str) {
    static SEEN: OnceLock<Mutex<HashSet<(String, String)>>> = OnceLock::new();
    let registry = canonical_host(registry_host);
    let realm = realm_host.to_ascii_lowercase();
    if registry == realm {
        return;
    }
    if registry == DOCKER_HUB_HOSTS[0] && realm == "auth.docker.io" {
        tracing::debug!(registry = %registry_host, realm = %realm, "Docker Hub token realm");
        return;
    }
    let first = SEEN
        .get_or_init(Mutex::default)
        .lock()
        .map(|mut seen| seen.insert((registry, realm.clone())))
        .unwrap_or(true);
    if first {
        tracing::warn!(
            registry = %registry_host,
            realm = %realm,
            "registry sends its token requests (with its credentials) to another host"
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn rule(s: &str) -> AllowRule {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn image(s: &str) -> ImageRef {
        s.parse().unwrap()
    }

    fn class(s: &str) -> AddressClass {
        AddressClass::of(s.parse().unwrap())
    }

    #[test]
    fn rules_parse_and_display() {
        for (input, shown) in [
            ("registry.example.com", "registry.example.com"),
            ("Registry.Example.com:5000", "registry.example.com:5000"),
            ("10.0.0.5:5000", "10.0.0.5:5000"),
            ("[::1]:5000", "[::1]:5000"),
            ("[::1]", "[::1]"),
            ("ghcr.io/my-org", "ghcr.io/my-org"),
            ("ghcr.io/my-org/team/", "ghcr.io/my-org/team"),
            ("index.docker.io/library", "docker.io/library"),
            ("*", "*"),
        ] {
            assert_eq!(rule(input).to_string(), shown, "{input}");
        }
        for (bad, says) in [
            ("", "empty"),
            ("https://ghcr.io", "scheme"),
            ("ghcr.io:0", "port"),
            ("ghcr.io:99999", "port"),
            ("ghcr.io:x", "port"),
            ("::1", "brackets"),
            ("[::1", "closing"),
            ("[nope]:5000", "IPv6"),
            ("bad_host", "host name"),
            ("-x.io", "host name"),
            ("ghcr.io/My-Org", "namespace"),
            ("ghcr.io/a//b", "namespace"),
        ] {
            let e = bad.parse::<AllowRule>().unwrap_err();
            assert_eq!(e.code(), "invalid-allow-rule");
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn references_match_hosts_ports_and_namespaces() {
        let egress = Egress::allowlist(vec![
            rule("ghcr.io/my-org"),
            rule("10.0.0.5:5000"),
            rule("registry.example.com"),
            rule("[::1]:5000"),
            rule("docker.io/library"),
        ]);
        for ok in [
            "ghcr.io/my-org/app:1",
            "ghcr.io/my-org/team/app",
            "10.0.0.5:5000/x",
            "registry.example.com/a/b",
            "registry.example.com:8443/a",
            "[::1]:5000/a",
            "alpine",
            "index.docker.io/library/alpine",
            "registry-1.docker.io/library/busybox",
        ] {
            egress
                .check_reference(&image(ok))
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for refused in [
            "ghcr.io/my-organisation/app",
            "ghcr.io/other/app",
            "10.0.0.5:5001/x",
            "10.0.0.5/x",
            "[::1]:5001/a",
            "docker.io/someone/app",
            "quay.io/a/b",
        ] {
            let e = egress.check_reference(&image(refused)).unwrap_err();
            assert_eq!(e.code(), "registry-not-allowed", "{refused}");
            assert!(e.to_string().contains("allow"), "{e}");
        }
        // No rules: membership is not checked (addresses are).
        Egress::public_only()
            .check_reference(&image("quay.io/a/b"))
            .unwrap();
        Egress::allowlist(vec![rule("*")])
            .check_reference(&image("quay.io/a/b"))
            .unwrap();
    }

    #[test]
    fn address_classes() {
        for (ip, want) in [
            ("8.8.8.8", AddressClass::Public),
            ("140.82.112.3", AddressClass::Public),
            ("127.0.0.1", AddressClass::Loopback),
            ("127.8.9.10", AddressClass::Loopback),
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.31.255.255", AddressClass::Private),
            ("172.32.0.1", AddressClass::Public),
            ("192.168.1.1", AddressClass::Private),
            ("169.254.169.254", AddressClass::LinkLocal),
            ("100.64.0.1", AddressClass::SharedAddressSpace),
            ("100.128.0.1", AddressClass::Public),
            ("0.0.0.0", AddressClass::Unspecified),
            ("224.0.0.1", AddressClass::Multicast),
            ("255.255.255.255", AddressClass::Multicast),
            ("240.0.0.1", AddressClass::Reserved),
            ("192.0.2.1", AddressClass::Documentation),
            ("198.51.100.1", AddressClass::Documentation),
            ("203.0.113.1", AddressClass::Documentation),
            ("198.18.0.1", AddressClass::Reserved),
            ("192.0.0.8", AddressClass::Reserved),
            ("::1", AddressClass::Loopback),
            ("::", AddressClass::Unspecified),
            ("fe80::1", AddressClass::LinkLocal),
            ("fd00::1", AddressClass::Private),
            ("fc00::1", AddressClass::Private),
            ("fec0::1", AddressClass::Private),
            ("ff02::1", AddressClass::Multicast),
            ("2001:db8::1", AddressClass::Documentation),
            ("2606:4700::1111", AddressClass::Public),
            ("2001:4860:4860::8888", AddressClass::Public),
            ("2001::1", AddressClass::Reserved),
            ("100::1", AddressClass::Reserved),
            // IPv4 inside IPv6.
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("::ffff:169.254.169.254", AddressClass::LinkLocal),
            ("::ffff:8.8.8.8", AddressClass::Public),
            ("::10.0.0.1", AddressClass::Private),
            ("64:ff9b::a9fe:a9fe", AddressClass::LinkLocal),
            ("64:ff9b:1::1", AddressClass::Private),
            ("2002:7f00:1::1", AddressClass::Reserved),
            ("2002:0808:0808::1", AddressClass::Public),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_by_literal_and_listed_port() {
        let url = |s: &str| Url::parse(s).unwrap();
        let public = Egress::public_only();
        assert!(public.check_url(&url("https://ghcr.io/v2/")).is_ok());
        for bad in [
            "http://127.0.0.1:5000/v2/",
            "http://[::1]:5000/v2/",
            "http://[::ffff:a9fe:a9fe]/latest/meta-data",
            "http://169.254.169.254/",
            "http://10.0.0.5/",
        ] {
            let e = public.check_url(&url(bad)).unwrap_err();
            assert!(e.reason.contains("address"), "{bad}: {e}");
        }
        let listed = Egress::permissive(
            None,
            vec![rule("127.0.0.1:5000"), rule("reg.internal:5000")],
        );
        assert!(listed.check_url(&url("http://127.0.0.1:5000/v2/")).is_ok());
        assert!(listed.check_url(&url("http://127.0.0.1:5001/v2/")).is_err());
        assert!(
            listed
                .check_url(&url("https://reg.internal:5000/v2/"))
                .is_ok()
        );
        let e = listed
            .check_url(&url("https://reg.internal:22/"))
            .unwrap_err();
        assert!(e.reason.contains("not for port 22"), "{e}");
        // A name that is not listed is left to the resolver.
        assert!(listed.check_url(&url("https://localhost:5000/")).is_ok());
    }

    #[test]
    fn resolved_addresses_are_filtered() {
        let egress = Egress::permissive(None, vec![rule("reg.internal")]);
        let ips = |v: &[&str]| {
            v.iter()
                .map(|s| s.parse().unwrap())
                .collect::<Vec<IpAddr>>()
        };
        assert_eq!(
            egress.filter("reg.internal", ips(&["10.0.0.5"])).unwrap(),
            ips(&["10.0.0.5"])
        );
        let e = egress
            .filter("localhost", ips(&["127.0.0.1", "::1"]))
            .unwrap_err();
        assert!(
            e.reason.contains("127.0.0.1") && e.reason.contains("loopback"),
            "{e}"
        );
        assert_eq!(
            egress
                .filter("mixed.example", ips(&["10.0.0.1", "8.8.8.8"]))
                .unwrap(),
            ips(&["8.8.8.8"])
        );
        assert!(egress.filter("empty.example", vec![]).is_err());
    }

    #[test]
    fn permissive_trusts_the_named_registry_only() {
        let named = image("127.0.0.1:5000/app:1");
        let egress = Egress::permissive(Some(&named), vec![]);
        assert!(egress.lists_registry(&named));
        assert!(!egress.lists_registry(&image("127.0.0.1:5001/app")));
        assert!(!egress.lists_registry(&image("localhost:5000/app")));
        let all = Egress::permissive(None, vec![rule("*")]);
        assert!(all.lists_registry(&image("localhost:5000/app")));
    }
}

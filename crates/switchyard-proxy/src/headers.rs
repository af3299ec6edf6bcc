//! Header rewriting between client and upstream: hop-by-hop headers, `X-Forwarded-*`, request
//! ids, and the upgrade handshake headers that must survive when a protocol switch is asked for.
//!
//! The HTTP/1.1 upgrade to cleartext HTTP/2 (`Upgrade: h2c`, RFC 7540 §3.2, removed by RFC 9113
//! §3.1) is not a switch the proxy makes or passes on: the `h2c` token is dropped from `Upgrade`
//! and `HTTP2-Settings` is removed, so such a request is an ordinary HTTP/1.1 request (RFC 9110
//! §7.8 lets a server ignore `Upgrade`). See docs/proxy.md, "HTTP handling".

use std::cell::RefCell;
use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use rand::Rng;

/// Headers that describe one hop (RFC 9110 §7.6.1) and are never forwarded as such, by their
/// lowercase names (a `HeaderName`'s text). `HTTP2-Settings` belongs to the h2c upgrade of one
/// connection (RFC 7540 §3.2.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "http2-settings",
];

/// The `Upgrade` token of the HTTP/1.1 → cleartext HTTP/2 upgrade, which is never passed on.
const H2C: &str = "h2c";

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// How many finished messages' header maps a thread keeps for the next messages.
const POOLED_MAPS: usize = 16;
/// A map with room for more fields than this is not kept: a message with many fields does not
/// make every later one carry its room.
const POOLED_CAPACITY: usize = 64;

thread_local! {
    static MAPS: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// An empty header map with room for `fields`: one that a finished message on this thread gave
/// back ([`recycle`]) when there is one. A new map costs two allocations, and dropping it two
/// frees; the proxy builds two per request (the client's request, the instance's response).
pub fn new_map(fields: usize) -> HeaderMap {
    let reused = MAPS
        .try_with(|maps| maps.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten();
    match reused {
        Some(mut map) => {
            map.reserve(fields);
            map
        }
        None => HeaderMap::with_capacity(fields),
    }
}

/// Empties `map` and keeps it for a later message on this thread (see [`new_map`]).
pub fn recycle(mut map: HeaderMap) {
    let capacity = map.capacity();
    if capacity == 0 || capacity > POOLED_CAPACITY {
        return;
    }
    map.clear();
    let _ = MAPS.try_with(|maps| {
        if let Ok(mut maps) = maps.try_borrow_mut()
            && maps.len() < POOLED_MAPS
        {
            maps.push(map);
        }
    });
}

/// The protocols a request asks to switch to (`Upgrade` named in `Connection`), if any, without
/// `h2c`: a request that asks only for h2c asks for no switch the proxy passes on.
pub fn requested_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !asks {
        return None;
    }
    let value = headers.get(header::UPGRADE)?;
    let is_h2c = |t: &str| {
        // A protocol may carry a version (`h2c/1`); h2c has none, but compare the name only.
        let name = t.trim().split('/').next().unwrap_or("");
        name.eq_ignore_ascii_case(H2C)
    };
    let Ok(text) = value.to_str() else {
        return Some(value.clone());
    };
    if !text.split(',').any(is_h2c) {
        return Some(value.clone());
    }
    let rest: Vec<&str> = text
        .split(',')
        .filter(|t| !is_h2c(t) && !t.trim().is_empty())
        .map(str::trim)
        .collect();
    if rest.is_empty() {
        return None;
    }
    HeaderValue::from_str(&rest.join(", ")).ok()
}

/// Removes hop-by-hop headers, including those the `Connection` header names. When `upgrade`
/// is given, `Connection: upgrade` and `Upgrade` are put back so the switch reaches the far side.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: Option<HeaderValue>) {
    // Most messages carry none: one pass over the names present is cheaper than hashing every
    // hop-by-hop name for a removal that finds nothing. Names listed in `Connection` are only
    // removed when `Connection` is present, which this pass sees.
    let any = headers.keys().any(is_hop_by_hop);
    if any {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for name in &named {
            headers.remove(name);
        }
        for name in HOP_BY_HOP {
            headers.remove(name);
        }
        headers.remove(header::UPGRADE);
    }
    if let Some(protocol) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
    }
}

/// Whether `name` is one of [`HOP_BY_HOP`] or `Upgrade`, compared as text: no name is built
/// or hashed for the usual field, which is none of them.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    let name = name.as_str();
    name == "upgrade" || HOP_BY_HOP.contains(&name)
}

/// A connection's client IP as `X-Forwarded-For` names it: written once per connection, and
/// shared (not copied) by each of its requests.
#[derive(Debug, Clone)]
pub struct ClientIp(HeaderValue);

impl ClientIp {
    pub fn new(peer: SocketAddr) -> Self {
        // An IP address's text is always a valid header value.
        let ip = HeaderValue::from_maybe_shared(Bytes::from(peer.ip().to_string()))
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        ClientIp(ip)
    }
}

/// The fields the proxy adds to a request on its way to an instance: `X-Forwarded-For` with the
/// client appended, `X-Forwarded-Proto` and `X-Forwarded-Host` when the client sent none, and a
/// request id when it sent none. They stay beside the client's map until the request is written:
/// the inline exchange writes them after the client's fields ([`Added::write`]), a request for
/// hyper's client gets them inserted ([`Added::insert_into`]).
#[derive(Debug, Clone, Default)]
pub struct Added {
    /// Replaces the client's `X-Forwarded-For` (it extends the first one).
    pub forwarded_for: Option<HeaderValue>,
    pub forwarded_proto: Option<&'static str>,
    pub forwarded_host: Option<HeaderValue>,
    pub request_id: Option<(HeaderName, HeaderValue)>,
}

impl Added {
    /// What the proxy adds to a request with `headers` from `client` over `proto`, and the
    /// request id (the client's `id_name` field, or a new random one: 32 lowercase hex digits).
    /// The client's fields are looked at in one pass rather than looked up one name at a time.
    pub fn for_request(
        headers: &HeaderMap,
        (client, proto): (&ClientIp, &'static str),
        id_name: &HeaderName,
        rng: &mut impl Rng,
    ) -> (Added, HeaderValue) {
        let (mut host, mut prior, mut id) = (None, None, None);
        let (mut has_proto, mut has_host) = (false, false);
        for (name, value) in headers {
            if name == header::HOST {
                host = host.or(Some(value));
            } else if name == X_FORWARDED_FOR {
                prior = prior.or(Some(value));
            } else if name == X_FORWARDED_PROTO {
                has_proto = true;
            } else if name == X_FORWARDED_HOST {
                has_host = true;
            } else if name == id_name {
                id = id.or(Some(value));
            }
        }
        let forwarded_for = match prior.and_then(|v| v.to_str().ok()) {
            None => Some(client.0.clone()),
            Some(prior) => {
                let ip = client.0.as_bytes();
                let mut xff = Vec::with_capacity(prior.len() + 2 + ip.len());
                xff.extend_from_slice(prior.as_bytes());
                xff.extend_from_slice(b", ");
                xff.extend_from_slice(ip);
                HeaderValue::from_maybe_shared(Bytes::from(xff)).ok()
            }
        };
        let (request_id, added_id) = match id {
            Some(id) => (id.clone(), None),
            None => {
                let id = random_request_id(rng);
                (id.clone(), Some((id_name.clone(), id)))
            }
        };
        let added = Added {
            forwarded_for,
            forwarded_proto: (!has_proto).then_some(proto),
            forwarded_host: host.filter(|h| !has_host && h.to_str().is_ok()).cloned(),
            request_id: added_id,
        };
        (added, request_id)
    }

    /// Whether the client's `name` field gives way to an added one.
    pub fn replaces(&self, name: &HeaderName) -> bool {
        self.forwarded_for.is_some() && name == X_FORWARDED_FOR
    }

    /// Calls `field` with each added field's name and value.
    pub fn write(&self, mut field: impl FnMut(&[u8], &[u8])) {
        if let Some(v) = &self.forwarded_for {
            field(X_FORWARDED_FOR.as_str().as_bytes(), v.as_bytes());
        }
        if let Some(proto) = self.forwarded_proto {
            field(X_FORWARDED_PROTO.as_str().as_bytes(), proto.as_bytes());
        }
        if let Some(v) = &self.forwarded_host {
            field(X_FORWARDED_HOST.as_str().as_bytes(), v.as_bytes());
        }
        if let Some((name, v)) = &self.request_id {
            field(name.as_str().as_bytes(), v.as_bytes());
        }
    }

    /// Puts the added fields into `headers`.
    pub fn insert_into(self, headers: &mut HeaderMap) {
        if let Some(v) = self.forwarded_for {
            headers.insert(X_FORWARDED_FOR, v);
        }
        if let Some(proto) = self.forwarded_proto {
            headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
        }
        if let Some(v) = self.forwarded_host {
            headers.insert(X_FORWARDED_HOST, v);
        }
        if let Some((name, v)) = self.request_id {
            headers.insert(name, v);
        }
    }
}

/// A new request id: 32 lowercase hex digits.
fn random_request_id(rng: &mut impl Rng) -> HeaderValue {
    // Each byte's two digits at once: half the steps of a digit at a time, and no 128-bit shifts.
    const PAIRS: [[u8; 2]; 256] = {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut pairs = [[0u8; 2]; 256];
        let mut i = 0;
        while i < 256 {
            pairs[i] = [HEX[i >> 4], HEX[i & 0xf]];
            i += 1;
        }
        pairs
    };
    let random = rng.random::<u128>().to_be_bytes();
    let mut id = [0u8; 32];
    for (pair, byte) in id.chunks_exact_mut(2).zip(random) {
        pair.copy_from_slice(&PAIRS[usize::from(byte)]);
    }
    // Owned by its `Bytes`: one allocation, and the copy for the response only counts a
    // reference (bytes from a slice or a vector allocate again on their first clone).
    // Hex digits are always a valid header value.
    HeaderValue::from_maybe_shared(Bytes::from_owner(id))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn strips_named_and_standard_hop_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, None);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn every_hop_by_hop_name_is_told_apart() {
        for name in HOP_BY_HOP.iter().chain(&["upgrade"]) {
            let name = HeaderName::from_static(name);
            assert!(is_hop_by_hop(&name), "{name}");
        }
        for name in [header::HOST, header::CONTENT_LENGTH, header::USER_AGENT] {
            assert!(!is_hop_by_hop(&name), "{name}");
        }
    }

    #[test]
    fn keeps_upgrade_handshake() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let up = requested_upgrade(&h);
        assert_eq!(up, Some(HeaderValue::from_static("websocket")));
        strip_hop_by_hop(&mut h, up);
        assert_eq!(h[header::UPGRADE], "websocket");
        assert_eq!(h[header::CONNECTION], "upgrade");
    }

    fn h2c_request(upgrade: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("Upgrade, HTTP2-Settings"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static(upgrade));
        h.insert(
            "http2-settings",
            HeaderValue::from_static("AAMAAABkAAQAoAAAAAIAAAAA"),
        );
        h
    }

    #[test]
    fn h2c_is_not_an_upgrade_to_pass_on() {
        let mut h = h2c_request("h2c");
        let up = requested_upgrade(&h);
        assert_eq!(up, None);
        strip_hop_by_hop(&mut h, up);
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn h2c_is_dropped_from_a_list_of_protocols() {
        let h = h2c_request("H2C, websocket");
        assert_eq!(
            requested_upgrade(&h),
            Some(HeaderValue::from_static("websocket"))
        );
        let h = h2c_request("websocket,h2c");
        assert_eq!(
            requested_upgrade(&h),
            Some(HeaderValue::from_static("websocket"))
        );
        // Not named in Connection: no upgrade at all, and HTTP2-Settings goes anyway.
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        h.insert("http2-settings", HeaderValue::from_static("AAMAAABk"));
        assert_eq!(requested_upgrade(&h), None);
        strip_hop_by_hop(&mut h, None);
        assert!(h.is_empty(), "{h:?}");
    }

    fn added(headers: &HeaderMap, client: &str, proto: &'static str) -> (HeaderMap, HeaderValue) {
        use rand::SeedableRng;
        let name = HeaderName::from_static("x-request-id");
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let client = ClientIp::new(client.parse().unwrap());
        let (added, id) = Added::for_request(headers, (&client, proto), &name, &mut rng);
        // Written after the client's fields (as the inline exchange does) or inserted into its
        // map (as for hyper's client), the request carries the same fields.
        let mut written: Vec<(Vec<u8>, Vec<u8>)> = headers
            .iter()
            .filter(|(n, _)| !added.replaces(n))
            .map(|(n, v)| (n.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        added.write(|n, v| written.push((n.to_vec(), v.to_vec())));
        let mut map = headers.clone();
        added.insert_into(&mut map);
        let mut inserted: Vec<(Vec<u8>, Vec<u8>)> = map
            .iter()
            .map(|(n, v)| (n.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        written.sort();
        inserted.sort();
        assert_eq!(written, inserted);
        (map, id)
    }

    #[test]
    fn forwarded_headers_append() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        h.insert(header::HOST, HeaderValue::from_static("example.com"));
        let (h, _) = added(&h, "127.0.0.1:5000", "http");
        assert_eq!(h[X_FORWARDED_FOR], "10.0.0.1, 127.0.0.1");
        assert_eq!(h.get_all(X_FORWARDED_FOR).iter().count(), 1);
        assert_eq!(h[X_FORWARDED_PROTO], "http");
        assert_eq!(h[X_FORWARDED_HOST], "example.com");
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_HOST, HeaderValue::from_static("first.example"));
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        h.insert(header::HOST, HeaderValue::from_static("example.com"));
        let (h, _) = added(&h, "[::1]:5000", "https");
        assert_eq!(h[X_FORWARDED_FOR], "::1");
        assert_eq!(h[X_FORWARDED_PROTO], "http");
        assert_eq!(h[X_FORWARDED_HOST], "first.example");
    }

    #[test]
    fn request_id_is_kept_or_32_hex_digits() {
        use rand::SeedableRng;
        let name = HeaderName::from_static("x-request-id");
        let (h, id) = added(&HeaderMap::new(), "127.0.0.1:1", "http");
        let expected = format!(
            "{:032x}",
            rand::rngs::SmallRng::seed_from_u64(7).random::<u128>()
        );
        assert_eq!(id, expected.as_str());
        assert_eq!(h[&name], id);
        let mut h = HeaderMap::new();
        h.insert(&name, HeaderValue::from_static("client-id"));
        let (h, id) = added(&h, "127.0.0.1:1", "http");
        assert_eq!(id, "client-id");
        assert_eq!(h.get_all(&name).iter().count(), 1);
    }
}

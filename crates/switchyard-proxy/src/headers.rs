//! Header rewriting between client and upstream: hop-by-hop headers, `X-Forwarded-*`, request
//! ids, and the upgrade handshake headers that must survive when a protocol switch is asked for.
//!
//! The HTTP/1.1 upgrade to cleartext HTTP/2 (`Upgrade: h2c`, RFC 7540 §3.2, removed by RFC 9113
//! §3.1) is not a switch the proxy makes or passes on: the `h2c` token is dropped from `Upgrade`
//! and `HTTP2-Settings` is removed, so such a request is an ordinary HTTP/1.1 request (RFC 9110
//! §7.8 lets a server ignore `Upgrade`). See docs/proxy.md, "HTTP handling".

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use rand::Rng;

/// Headers that describe one hop (RFC 9110 §7.6.1) and are never forwarded as such.
/// `HTTP2-Settings` belongs to the h2c upgrade of one connection (RFC 7540 §3.2.1).
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    HeaderName::from_static("http2-settings"),
];

/// The `Upgrade` token of the HTTP/1.1 → cleartext HTTP/2 upgrade, which is never passed on.
const H2C: &str = "h2c";

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

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
    let any = headers
        .keys()
        .any(|k| k == header::UPGRADE || HOP_BY_HOP.contains(k));
    if any {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for name in named.iter().chain(HOP_BY_HOP.iter()) {
            headers.remove(name);
        }
        headers.remove(header::UPGRADE);
    }
    if let Some(protocol) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
    }
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

/// Adds the client to `X-Forwarded-For`, and `X-Forwarded-Proto`/`-Host` when absent; `host` is
/// the request's `Host`, passed on as it is.
pub fn add_forwarded(
    headers: &mut HeaderMap,
    client: &ClientIp,
    proto: &'static str,
    host: Option<HeaderValue>,
) {
    let prior = headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok());
    let xff = match prior {
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
    if let Some(v) = xff {
        headers.insert(X_FORWARDED_FOR, v);
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if let Some(v) = host.filter(|_| !headers.contains_key(&X_FORWARDED_HOST)) {
        headers.insert(X_FORWARDED_HOST, v);
    }
}

/// Keeps the client's request id or adds a random one (32 lowercase hex digits); returns it for
/// the response.
pub fn ensure_request_id(
    headers: &mut HeaderMap,
    name: &HeaderName,
    rng: &mut impl Rng,
) -> HeaderValue {
    if let Some(v) = headers.get(name) {
        return v.clone();
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = rng.random::<u128>();
    let mut id = [0u8; 32];
    for (i, digit) in id.iter_mut().enumerate() {
        *digit = HEX[((n >> (124 - 4 * i)) & 0xf) as usize];
    }
    // Hex digits are always a valid header value.
    let v = HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    headers.insert(name.clone(), v.clone());
    v
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

    #[test]
    fn forwarded_headers_append() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        add_forwarded(
            &mut h,
            &ClientIp::new("127.0.0.1:5000".parse().unwrap()),
            "http",
            Some(HeaderValue::from_static("example.com")),
        );
        assert_eq!(h[X_FORWARDED_FOR], "10.0.0.1, 127.0.0.1");
        assert_eq!(h[X_FORWARDED_PROTO], "http");
        assert_eq!(h[X_FORWARDED_HOST], "example.com");
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_HOST, HeaderValue::from_static("first.example"));
        add_forwarded(
            &mut h,
            &ClientIp::new("[::1]:5000".parse().unwrap()),
            "https",
            Some(HeaderValue::from_static("example.com")),
        );
        assert_eq!(h[X_FORWARDED_FOR], "::1");
        assert_eq!(h[X_FORWARDED_PROTO], "https");
        assert_eq!(h[X_FORWARDED_HOST], "first.example");
    }

    #[test]
    fn request_id_is_kept_or_32_hex_digits() {
        use rand::SeedableRng;
        let name = HeaderName::from_static("x-request-id");
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let mut h = HeaderMap::new();
        let id = ensure_request_id(&mut h, &name, &mut rng);
        let expected = format!(
            "{:032x}",
            rand::rngs::SmallRng::seed_from_u64(7).random::<u128>()
        );
        assert_eq!(id, expected.as_str());
        assert_eq!(h[&name], id);
        h.insert(&name, HeaderValue::from_static("client-id"));
        assert_eq!(ensure_request_id(&mut h, &name, &mut rng), "client-id");
    }
}

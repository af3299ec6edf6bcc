#![allow(clippy::unwrap_used)]

use super::*;

/// Parses a response from `wire` fed one byte at a time, then decodes its body the same way;
/// returns (status, body) or the first error.
fn read_fed(wire: &[u8], to_head: bool) -> Result<(StatusCode, Vec<u8>, bool), ProtocolError> {
    let mut buf = BytesMut::new();
    let mut spans = Vec::new();
    let mut fed = wire.iter();
    let (parts, mut framing, keep_alive) = loop {
        match parse_head(&mut buf, &mut spans, to_head)? {
            Some(Parsed::Final(parts, framing, keep_alive)) => break (parts, framing, keep_alive),
            Some(Parsed::Interim) => continue,
            None => buf.extend_from_slice(&[*fed.next().ok_or(ProtocolError::Chunked)?]),
        }
    };
    let mut body = Vec::new();
    loop {
        match next(&mut framing, &mut buf)? {
            Step::Data(data) => body.extend_from_slice(&data),
            Step::End => break,
            Step::More => match fed.next() {
                Some(b) => buf.extend_from_slice(&[*b]),
                None if matches!(framing, Framing::UntilClose) => break,
                None => return Err(ProtocolError::Chunked),
            },
        }
    }
    assert!(
        fed.next().is_none() && buf.is_empty(),
        "bytes left after the body"
    );
    Ok((parts.status, body, keep_alive))
}

#[test]
fn every_framing_reads_its_body_exactly_whatever_the_reads() {
    let cases: [(&[u8], bool, &str, bool); 6] = [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", false, "hello", true),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3;a=b\r\nhel\r\n2\r\nlo\r\n0\r\nt: 1\r\n\r\n",
            false,
            "hello",
            true,
        ),
        (b"HTTP/1.1 200 OK\r\n\r\nhello", false, "hello", false),
        (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", false, "ok", false),
        (b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok", false, "ok", true),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n", true, "", false),
    ];
    for (wire, to_head, body, keep_alive) in cases {
        let (status, got, keep) = read_fed(wire, to_head).unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(std::str::from_utf8(&got).unwrap(), body, "{wire:?}");
        assert_eq!(keep, keep_alive, "{wire:?}");
    }
}

#[test]
fn interim_responses_come_before_the_final_one() {
    let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\ncontent-length: 9\r\n\r\n";
    let (status, body, keep) = read_fed(wire, false).unwrap();
    assert_eq!(
        (status, body.len(), keep),
        (StatusCode::NO_CONTENT, 0, true)
    );
}

#[test]
fn broken_framing_is_an_error() {
    let broken: [&[u8]; 9] = [
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2x\r\n\r\nok",
        // One past u64::MAX.
        b"HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551616\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2, 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\ncontent-length: -2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10000000000000000\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
    ];
    for wire in broken {
        assert!(
            read_fed(wire, false).is_err(),
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
    // Agreeing repeats of one length are one length.
    let (_, body, _) =
        read_fed(b"HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\n\r\nok", false).unwrap();
    assert_eq!(body, b"ok");
    // The longest length read without a lookup, and one with spaces around it.
    let mut wire =
        BytesMut::from(&b"HTTP/1.1 200 OK\r\ncontent-length: 9999999999999999999\r\n\r\n"[..]);
    let Some(Parsed::Final(_, framing, _)) = parse_head(&mut wire, &mut Vec::new(), false).unwrap()
    else {
        panic!("not a final head");
    };
    assert!(matches!(
        framing,
        Framing::Length(9_999_999_999_999_999_999)
    ));
    let (_, body, _) =
        read_fed(b"HTTP/1.1 200 OK\r\ncontent-length:  2 \r\n\r\nok", false).unwrap();
    assert_eq!(body, b"ok");
}

#[test]
fn a_head_larger_than_the_limit_is_refused() {
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\n"[..]);
    buf.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES));
    assert!(matches!(
        parse_head(&mut buf, &mut Vec::new(), false),
        Err(ProtocolError::HeadTooLarge)
    ));
}

#[test]
fn the_request_head_has_a_host_and_no_framing_fields() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    headers.append("x-a", HeaderValue::from_static("1"));
    headers.append("x-a", HeaderValue::from_static("2"));
    let head = RequestHead {
        method: Method::DELETE,
        path_and_query: http::uri::PathAndQuery::from_static("/p?q=1"),
        headers,
        added: crate::headers::Added::default(),
    };
    let mut out = Vec::new();
    encode(&head, "10.0.0.1:80", &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "DELETE /p?q=1 HTTP/1.1\r\nhost: 10.0.0.1:80\r\nx-a: 1\r\nx-a: 2\r\n\r\n"
    );
}

#[test]
fn the_fields_the_proxy_adds_follow_the_clients_and_replace_its_forwarded_for() {
    use rand::SeedableRng;
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static("example.com"));
    headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.9"));
    headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    headers.insert("x-request-id", HeaderValue::from_static("abc"));
    let client = crate::headers::ClientIp::new("192.0.2.1:4000".parse().unwrap());
    let id_name = HeaderName::from_static("x-request-id");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    let (added, id) =
        crate::headers::Added::for_request(&headers, (&client, "http"), &id_name, &mut rng);
    assert_eq!(id, "abc");
    let head = RequestHead {
        method: Method::GET,
        path_and_query: http::uri::PathAndQuery::from_static("/"),
        headers,
        added,
    };
    let mut out = Vec::new();
    encode(&head, "10.0.0.1:80", &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "GET / HTTP/1.1\r\nhost: example.com\r\nx-forwarded-proto: https\r\n\
         x-request-id: abc\r\nx-forwarded-for: 10.0.0.9, 192.0.2.1\r\n\
         x-forwarded-host: example.com\r\n\r\n"
    );
}

#[test]
fn a_length_beside_a_transfer_coding_is_dropped_and_the_connection_not_reused() {
    let mut buf = BytesMut::from(
        &b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\ntransfer-encoding: chunked\r\n\r\n"[..],
    );
    let Ok(Some(Parsed::Final(parts, framing, keep_alive))) =
        parse_head(&mut buf, &mut Vec::new(), false)
    else {
        panic!("not parsed");
    };
    assert!(matches!(framing, Framing::Chunked(Chunked::Size)));
    assert!(!parts.headers.contains_key(header::CONTENT_LENGTH));
    assert!(!keep_alive);
}

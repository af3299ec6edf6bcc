#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use http_body_util::{BodyExt, StreamBody};

use super::*;
use crate::body::{BodyError, full};

const LIMITS: HeadLimits = HeadLimits {
    max_headers: 4,
    max_head_bytes: 8192,
    read_timeout: Duration::from_secs(1),
};

fn parsed(bytes: &[u8]) -> (Result<Option<Next>, Refusal>, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    let next = parse(&mut buf, &mut Vec::new(), LIMITS);
    (next, buf)
}

#[test]
fn a_request_without_a_body_is_taken_and_the_next_one_left() {
    let (next, rest) =
        parsed(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-One: 1\r\nConnection: close\r\n\r\nGET /next");
    let Ok(Some(Next::Request(request))) = next else {
        panic!("not taken");
    };
    assert_eq!(request.req.method(), Method::GET);
    assert_eq!(request.req.uri(), "/a?b=1");
    assert_eq!(request.req.headers()["x-one"], "1");
    assert_eq!(request.req.headers().len(), 3);
    assert!(request.close && !request.to_head);
    assert_eq!(&rest[..], b"GET /next");
}

#[test]
fn requests_this_reader_does_not_take_stay_in_the_buffer() {
    for head in [
        &b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"[..],
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"CONNECT x:443 HTTP/1.1\r\n\r\n",
        b"GET http://x/ HTTP/1.1\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\n\r\n",
    ] {
        let (next, rest) = parsed(head);
        assert!(matches!(next, Ok(Some(Next::Handoff))), "{head:?}");
        assert_eq!(&rest[..], head);
    }
    // A length of zero is no body.
    let (next, _) = parsed(b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert!(matches!(next, Ok(Some(Next::Request(_)))));
}

#[test]
fn heads_are_refused_by_what_is_wrong_with_them() {
    assert!(matches!(
        parsed(b"GET / HTTP/1.1\r\nHost: x\r\n").0,
        Ok(None)
    ));
    assert_eq!(parsed(b"GARBAGE\r\n\r\n").0.err(), Some(Refusal::Malformed));
    let many = b"GET / HTTP/1.1\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\n\r\n";
    assert_eq!(parsed(many).0.err(), Some(Refusal::TooLarge));
    let long = format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(9000));
    assert_eq!(parsed(long.as_bytes()).0.err(), Some(Refusal::TooLarge));
}

async fn written(response: Response<ProxyBody>, to_head: bool) -> (String, bool) {
    written_closing(response, to_head, false).await
}

/// What goes on the wire for `response`, and whether the connection is kept; `close`: the
/// client asked to close.
async fn written_closing(
    response: Response<ProxyBody>,
    to_head: bool,
    close: bool,
) -> (String, bool) {
    let mut io = Vec::new();
    let keep = write_response(&mut io, response, to_head, close, &mut Vec::new())
        .await
        .unwrap();
    (String::from_utf8(io).unwrap(), keep)
}

fn streamed(pieces: &[&'static str]) -> ProxyBody {
    let frames = pieces
        .iter()
        .map(|p| Ok::<_, BodyError>(http_body::Frame::data(Bytes::from_static(p.as_bytes()))));
    StreamBody::new(futures_util::stream::iter(frames.collect::<Vec<_>>())).boxed_unsync()
}

#[tokio::test]
async fn a_body_of_known_length_is_sent_with_it_and_one_of_unknown_length_in_chunks() {
    let (text, keep) = written(Response::new(full("hi")), false).await;
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains("content-length: 2\r\n") && text.ends_with("\r\n\r\nhi"),
        "{text}"
    );
    assert!(keep);

    let (text, keep) = written(Response::new(streamed(&["ab", "", "cde"])), false).await;
    assert!(text.contains("transfer-encoding: chunked\r\n"), "{text}");
    assert!(
        text.ends_with("\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"),
        "{text}"
    );
    assert!(keep);
}

#[tokio::test]
async fn no_body_goes_out_after_head_204_and_304() {
    let (text, _) = written(Response::new(full("hidden")), true).await;
    assert!(
        text.ends_with("\r\n\r\n") && !text.contains("hidden"),
        "{text}"
    );
    let mut no_content = Response::new(full("x"));
    *no_content.status_mut() = StatusCode::NO_CONTENT;
    let (text, keep) = written(no_content, false).await;
    assert!(text.starts_with("HTTP/1.1 204 No Content\r\n") && text.ends_with("\r\n\r\n"));
    assert!(!text.contains("content-length") && keep, "{text}");
}

#[tokio::test]
async fn a_body_that_breaks_its_length_closes_the_connection() {
    let mut short = Response::new(streamed(&["ab"]));
    short
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
    let (_, keep) = written(short, false).await;
    assert!(!keep);
    let mut long = Response::new(streamed(&["abcdef"]));
    long.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
    let (text, keep) = written(long, false).await;
    assert!(!keep && !text.contains("abcdef"), "{text}");
    let mut closing = Response::new(full("x"));
    closing
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    assert!(!written(closing, false).await.1);
    // The client's `Connection: close` is answered with one, and the connection not kept.
    let (text, keep) = written_closing(Response::new(full("x")), false, true).await;
    assert!(
        text.contains("\r\nconnection: close\r\n") && !keep,
        "{text}"
    );
}

#[tokio::test]
async fn rewind_reads_what_was_read_before_the_rest() {
    let mut io = Rewind::new(Bytes::from_static(b"abc"), &b"def"[..]);
    let mut all = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut io, &mut all)
        .await
        .unwrap();
    assert_eq!(all, b"abcdef");
}

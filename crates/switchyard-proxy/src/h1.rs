//! A plain HTTP/1.1 client exchange driven inside the request's own task: the request head is
//! written and the response head read by the task that serves the client, and the response body
//! is read from the socket by whoever polls it (the client connection's task). No task or
//! channel sits between the two connections.
//!
//! It carries requests without a body to plain-HTTP instances, which is most of the traffic;
//! requests with a body, upgrades and TLS instances go through hyper's client
//! ([`crate::upstream`]), which can stream a request body while the response arrives.
//!
//! The codec is deliberately small: `Content-Length`, chunked and close-delimited response
//! bodies, no body for `HEAD`, 204 and 304, interim 1xx responses skipped, chunk extensions and
//! trailers read and dropped. Malformed framing is an error, never a guess.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Version};
use http_body::{Frame, SizeHint};
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::forward::RequestHead;

/// At most this many response header fields, as hyper's client.
const MAX_HEADERS: usize = 100;
/// A response head (or a chunk-size line, or a trailer section) longer than this is refused;
/// hyper's client buffers as much.
const MAX_HEAD_BYTES: usize = 8192 + 4096 * 100;
/// How much room each read asks for.
const READ_CHUNK: usize = 8192;

/// A response that does not follow HTTP/1.1.
#[derive(Debug, Error)]
pub enum ProtocolError {
    #[error("malformed response head: {0}")]
    Head(#[from] httparse::Error),
    #[error("the response head exceeds {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("invalid header value of `{0}`")]
    HeaderValue(HeaderName),
    #[error("invalid or conflicting Content-Length")]
    ContentLength,
    #[error("malformed chunked body")]
    Chunked,
    #[error("101 Switching Protocols to a request that asked for no upgrade")]
    UnaskedUpgrade,
}

impl From<ProtocolError> for io::Error {
    fn from(e: ProtocolError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// How one exchange failed.
#[derive(Debug, Error)]
pub enum ExchangeError {
    /// Writing the request failed: the instance did not take it.
    #[error("writing the request failed")]
    Unwritten(#[source] io::Error),
    /// The instance closed or reset the connection before a byte of the response came: it may
    /// have closed an idle connection as the request arrived.
    #[error("the connection closed before the response began")]
    Unanswered(#[source] io::Error),
    #[error("the exchange failed")]
    Io(#[source] io::Error),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// One connection to an instance, with what has been read from it and not consumed yet.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    read: BytesMut,
    write: Vec<u8>,
    spans: Vec<Span>,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Self {
        Conn {
            stream,
            read: BytesMut::new(),
            write: Vec::new(),
            spans: Vec::new(),
        }
    }

    /// Whether an idle connection can take a request: the instance has not closed it and sent
    /// nothing unasked. Reads the socket only when its readiness says there is something to read.
    pub fn is_usable(&self) -> bool {
        let mut probe = [0u8; 1];
        self.read.is_empty()
            && matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends `head` (no body) and reads the response head, skipping interim 1xx responses.
    ///
    /// # Errors
    /// [`ExchangeError::Unwritten`] when the request could not be written,
    /// [`ExchangeError::Unanswered`] when the connection failed before any response byte;
    /// otherwise the I/O or protocol error.
    pub async fn exchange(
        mut self,
        head: &RequestHead,
        authority: &str,
    ) -> Result<(http::response::Parts, Body), ExchangeError> {
        encode(head, authority, &mut self.write);
        if let Err(e) = self.stream.write_all(&self.write).await {
            return Err(ExchangeError::Unwritten(e));
        }
        let mut answered = false;
        loop {
            match parse_head(&mut self.read, &mut self.spans, head.method == Method::HEAD) {
                Ok(Some(Parsed::Interim)) => continue,
                Ok(Some(Parsed::Final(parts, framing, keep_alive))) => {
                    let body = Body::new(self, framing, keep_alive);
                    return Ok((parts, body));
                }
                Ok(None) => {}
                Err(e) => return Err(e.into()),
            }
            match std::future::poll_fn(|cx| poll_read(&mut self, cx)).await {
                Ok(0) if !answered => {
                    let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
                    return Err(ExchangeError::Unanswered(eof));
                }
                Ok(0) => {
                    let eof = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the instance closed the connection inside the response head",
                    );
                    return Err(ExchangeError::Io(eof));
                }
                Ok(_) => answered = true,
                Err(e) if !answered => return Err(ExchangeError::Unanswered(e)),
                Err(e) => return Err(ExchangeError::Io(e)),
            }
        }
    }
}

/// Writes the request line and headers, with a `Host` (the instance's address when the request
/// has none). A request without a body needs no framing header: its length is zero.
fn encode(head: &RequestHead, authority: &str, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.path_and_query.as_str().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let fields_start = out.len();
    let mut has_host = false;
    let mut field = |name: &[u8], value: &[u8]| {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    for (name, value) in &head.headers {
        if name == header::TRANSFER_ENCODING || head.added.replaces(name) {
            continue;
        }
        has_host |= name == header::HOST;
        field(name.as_str().as_bytes(), value.as_bytes());
    }
    head.added.write(field);
    // Host goes first (RFC 9112 §3.2); noted while writing the fields rather than looked up.
    if !has_host {
        let host = [b"host: ", authority.as_bytes(), b"\r\n"].concat();
        out.splice(fields_start..fields_start, host);
    }
    out.extend_from_slice(b"\r\n");
}

enum Parsed {
    /// A 1xx before the final response, consumed.
    Interim,
    Final(http::response::Parts, Framing, bool),
}

/// Where a header field's name and value sit in the head: `[name_start, name_end, value_start,
/// value_end]`.
type Span = [usize; 4];

/// Parses a response head from the front of `buf`, if it is all there, and consumes it.
/// `spans` is scratch space, kept by the connection so that no parse allocates.
fn parse_head(
    buf: &mut BytesMut,
    spans: &mut Vec<Span>,
    to_head: bool,
) -> Result<Option<Parsed>, ProtocolError> {
    if buf.is_empty() {
        return Ok(None);
    }
    // Where each field sits in `buf`, so that the head can be frozen and shared by the values.
    spans.clear();
    let (len, code, minor) = {
        let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            buf,
            &mut fields,
        )?;
        let len = match parsed {
            httparse::Status::Complete(len) => len,
            httparse::Status::Partial if buf.len() > MAX_HEAD_BYTES => {
                return Err(ProtocolError::HeadTooLarge);
            }
            httparse::Status::Partial => return Ok(None),
        };
        spans_of(response.headers, buf.as_ptr() as usize, spans);
        let code = response.code.unwrap_or_default();
        let minor = response.version.unwrap_or_default();
        (len, code, minor)
    };
    let head = buf.split_to(len).freeze();
    let status = StatusCode::from_u16(code).map_err(|_| httparse::Error::Status)?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(ProtocolError::UnaskedUpgrade);
    }
    if status.is_informational() {
        return Ok(Some(Parsed::Interim));
    }
    // Room for the fields the proxy adds (the request id, an affinity cookie) without a rehash.
    let mut headers = crate::headers::new_map(spans.len() + 2);
    let mut seen = Seen::default();
    for &[name_start, name_end, value_start, value_end] in spans.iter() {
        let name = HeaderName::from_bytes(&head[name_start..name_end])
            .map_err(|_| httparse::Error::HeaderName)?;
        seen.note(&name, &head[value_start..value_end]);
        let value = HeaderValue::from_maybe_shared(head.slice(value_start..value_end))
            .map_err(|_| ProtocolError::HeaderValue(name.clone()))?;
        headers.append(name, value);
    }
    let framing = framing(status, &headers, seen, to_head)?;
    let mut keep_alive =
        keep_alive(minor, &headers, seen) && !matches!(framing, Framing::UntilClose);
    // Both framings at once: `Transfer-Encoding` decides (RFC 9112 §6.3), and the length goes,
    // so that the client is never told a length the body does not have. Such a response may be
    // an attempt at response splitting; its connection is not trusted with another request.
    if seen.transfer_encoding && seen.content_length {
        headers.remove(header::CONTENT_LENGTH);
        keep_alive = false;
    }
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = status;
    parts.version = if minor == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    parts.headers = headers;
    Ok(Some(Parsed::Final(parts, framing, keep_alive)))
}

/// Where each of `fields` sits in the buffer starting at address `base`, into `spans`.
fn spans_of(fields: &[httparse::Header<'_>], base: usize, spans: &mut Vec<Span>) {
    spans.extend(fields.iter().map(|field| {
        let name = field.name.as_ptr() as usize - base;
        let value = field.value.as_ptr() as usize - base;
        [
            name,
            name + field.name.len(),
            value,
            value + field.value.len(),
        ]
    }));
}

/// Whether a `Connection` field of `headers` lists `token`.
fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| value_has_token(v, token))
}

/// Whether the `Connection` value `value` lists `token`.
fn value_has_token(value: &HeaderValue, token: &str) -> bool {
    value
        .to_str()
        .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// Which of the fields that frame a response are present, noted while the head is read so
/// that the usual response is not looked up for fields it does not have.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    content_length: bool,
    /// The length when the head has one `Content-Length` field of digits alone, the usual
    /// response: read from it without a lookup. `None` also when there are several fields.
    simple_length: Option<u64>,
    transfer_encoding: bool,
    connection: bool,
}

impl Seen {
    fn note(&mut self, name: &HeaderName, value: &[u8]) {
        if name == header::CONTENT_LENGTH {
            self.simple_length = (!self.content_length).then(|| digits(value)).flatten();
            self.content_length = true;
        } else if name == header::TRANSFER_ENCODING {
            self.transfer_encoding = true;
        } else if name == header::CONNECTION {
            self.connection = true;
        }
    }
}

/// `value` as a decimal number when it is one and nothing else (no list, no spaces), and fits.
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// How the response body is delimited (RFC 9112 §6.3).
fn framing(
    status: StatusCode,
    headers: &HeaderMap,
    seen: Seen,
    to_head: bool,
) -> Result<Framing, ProtocolError> {
    if to_head || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Length(0));
    }
    if seen.transfer_encoding {
        let codings = headers.get_all(header::TRANSFER_ENCODING);
        let last = codings
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|c| !c.is_empty());
        return Ok(match last {
            Some(c) if c.eq_ignore_ascii_case("chunked") => Framing::Chunked(Chunked::Size),
            _ => Framing::UntilClose,
        });
    }
    if !seen.content_length {
        return Ok(Framing::UntilClose);
    }
    if let Some(length) = seen.simple_length {
        return Ok(Framing::Length(length));
    }
    let mut length = None;
    for value in &headers.get_all(header::CONTENT_LENGTH) {
        let text = value.to_str().map_err(|_| ProtocolError::ContentLength)?;
        for item in text.split(',') {
            let item = item.trim();
            if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ProtocolError::ContentLength);
            }
            let n: u64 = item.parse().map_err(|_| ProtocolError::ContentLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(ProtocolError::ContentLength);
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

/// Whether the connection may carry another request after this response.
fn keep_alive(minor: u8, headers: &HeaderMap, seen: Seen) -> bool {
    let has = |token: &str| seen.connection && has_token(headers, token);
    if minor == 0 {
        has("keep-alive") && !has("close")
    } else {
        !has("close")
    }
}

#[derive(Debug, Clone, Copy)]
enum Framing {
    /// This many bytes are left.
    Length(u64),
    Chunked(Chunked),
    /// Until the instance closes the connection; it cannot be reused.
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one, this many bytes of them so far.
    Trailers(usize),
}

/// A response body read from its connection by whoever polls it. When it ends cleanly on a
/// connection that may be reused, [`Body::reusable`] hands the connection back.
#[derive(Debug)]
pub struct Body {
    /// `None` once the body failed (or ended by the instance closing the connection).
    conn: Option<Conn>,
    /// What is left of the body; `Length(0)` once it has ended.
    framing: Framing,
    keep_alive: bool,
}

impl Body {
    fn new(conn: Conn, framing: Framing, keep_alive: bool) -> Self {
        Body {
            conn: Some(conn),
            framing,
            keep_alive,
        }
    }

    /// The connection, once the body has ended, if it can carry another request: the instance
    /// keeps it alive and sent nothing past the body.
    pub fn reusable(&mut self) -> Option<Conn> {
        if !self.is_end_stream() || !self.keep_alive {
            return None;
        }
        self.conn.take().filter(|c| c.read.is_empty())
    }

    pub fn is_end_stream(&self) -> bool {
        matches!(self.framing, Framing::Length(0))
    }

    pub fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }

    pub fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match next(&mut this.framing, &mut conn.read) {
                Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(Step::End) => return Poll::Ready(None),
                Ok(Step::More) => {}
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
            match ready!(poll_read(conn, cx)) {
                Ok(0) if matches!(this.framing, Framing::UntilClose) => {
                    this.framing = Framing::Length(0);
                    this.conn = None;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    this.conn = None;
                    let eof = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the instance closed the connection inside the body",
                    );
                    return Poll::Ready(Some(Err(eof)));
                }
                Ok(_) => {}
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

/// Reads what the socket has into the connection's buffer. Through `AsyncRead`, so that a
/// short read marks the socket drained and the next read waits for readiness instead of
/// trying (and failing with `EAGAIN`) first.
fn poll_read(conn: &mut Conn, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    conn.read.reserve(READ_CHUNK);
    tokio_util::io::poll_read_buf(Pin::new(&mut conn.stream), cx, &mut conn.read)
}

enum Step {
    Data(Bytes),
    /// Need more bytes from the socket.
    More,
    End,
}

/// The next piece of the body from `buf`, advancing the framing state.
fn next(framing: &mut Framing, buf: &mut BytesMut) -> Result<Step, ProtocolError> {
    match framing {
        Framing::Length(0) => Ok(Step::End),
        Framing::Length(left) => {
            if buf.is_empty() {
                return Ok(Step::More);
            }
            let take = (*left).min(buf.len() as u64);
            *left -= take;
            Ok(Step::Data(buf.split_to(take as usize).freeze()))
        }
        Framing::UntilClose => {
            if buf.is_empty() {
                return Ok(Step::More);
            }
            Ok(Step::Data(buf.split().freeze()))
        }
        Framing::Chunked(state) => loop {
            match *state {
                Chunked::Size => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Step::More);
                    };
                    let size = chunk_size(&line)?;
                    *state = if size == 0 {
                        Chunked::Trailers(0)
                    } else {
                        Chunked::Data(size)
                    };
                }
                Chunked::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let take = left.min(buf.len() as u64);
                    *state = if take == left {
                        Chunked::DataEnd
                    } else {
                        Chunked::Data(left - take)
                    };
                    return Ok(Step::Data(buf.split_to(take as usize).freeze()));
                }
                Chunked::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(ProtocolError::Chunked);
                    }
                    buf.advance(2);
                    *state = Chunked::Size;
                }
                Chunked::Trailers(seen) => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Step::More);
                    };
                    if line.is_empty() {
                        *framing = Framing::Length(0);
                        return Ok(Step::End);
                    }
                    let seen = seen + line.len() + 2;
                    if seen > MAX_HEAD_BYTES {
                        return Err(ProtocolError::Chunked);
                    }
                    *state = Chunked::Trailers(seen);
                }
            }
        },
    }
}

/// A CRLF-terminated line from the front of `buf`, without its CRLF, if it is all there.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, ProtocolError> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() > MAX_HEAD_BYTES {
            Err(ProtocolError::Chunked)
        } else {
            Ok(None)
        };
    };
    let line = buf.split_to(end);
    buf.advance(2);
    Ok(Some(line))
}

/// The size of a chunk-size line: hex digits, then optional whitespace and extensions.
fn chunk_size(line: &[u8]) -> Result<u64, ProtocolError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = &line[digits..];
    let rest_ok = rest
        .iter()
        .find(|b| **b != b' ' && **b != b'\t')
        .is_none_or(|b| *b == b';');
    if digits == 0 || digits > 16 || !rest_ok {
        return Err(ProtocolError::Chunked);
    }
    let text = std::str::from_utf8(&line[..digits]).map_err(|_| ProtocolError::Chunked)?;
    u64::from_str_radix(text, 16).map_err(|_| ProtocolError::Chunked)
}

pub mod server;
#[cfg(test)]
mod tests;

//! The client side of an HTTP/1.1 connection for the usual request, read and answered by the
//! connection's own task: the request head parsed with httparse into the request the proxy
//! serves, the response head and body written back with the body's frames gathered into one
//! write while they are ready.
//!
//! It takes HTTP/1.1 requests without a body in origin form (`GET /path`, `DELETE`, a `POST`
//! with `Content-Length: 0`). The first request it does not take (a body, `Expect`, an upgrade,
//! `CONNECT`, HTTP/1.0, an HTTP/2 preface) hands the connection to hyper's server with the bytes
//! read so far ([`Served::Handoff`]), for the rest of the connection's life. A head that is not
//! HTTP/1.1 gets 400, one over the limits 431, one not complete within the header read timeout
//! 408; each closes the connection without reaching the request path.

use std::future::Future;
use std::io::{self, Write as _};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::{READ_CHUNK, Span, has_token, spans_of, value_has_token};
use crate::body::{ProxyBody, RequestBody};
use crate::server::Service;

/// Limits on a request head, as hyper's server applies them.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Header fields at most; one more gets 431.
    pub max_headers: usize,
    /// Bytes of head at most; more gets 431.
    pub max_head_bytes: usize,
    /// From the first byte of a head to its end.
    pub read_timeout: Duration,
}

/// How the proxy's own reader left a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Served {
    /// Closed, or to be closed: nothing more to do.
    Closed,
    /// A request it does not take is at the front of the read buffer: hyper serves the rest.
    Handoff,
}

/// Header fields a request is parsed into at most without allocating.
const STACK_FIELDS: usize = 100;
/// Body frames up to this size are copied behind the head (and each other) into one write;
/// larger ones are written as they are.
const GATHER: usize = 16 * 1024;

/// Serves requests from `io` until the connection closes or a request needs hyper. `buf` holds
/// what was read and not consumed; `waiting` is true while the connection waits for a request
/// with nothing of one read (when a stopping listener may close it).
pub async fn serve<I>(
    io: &mut I,
    buf: &mut BytesMut,
    limits: HeadLimits,
    waiting: &AtomicBool,
    service: &Service,
) -> Served
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut spans = Vec::new();
    let mut out = Vec::new();
    let mut first = true;
    loop {
        let next = read_head(io, buf, limits, waiting, &mut spans, first).await;
        first = false;
        let request = match next {
            Ok(Next::Request(request)) => request,
            Ok(Next::Handoff) => return Served::Handoff,
            Ok(Next::Closed) => {
                let _ = io.shutdown().await;
                return Served::Closed;
            }
            Err(refusal) => {
                refuse(io, refusal, &mut out).await;
                return Served::Closed;
            }
        };
        let Request {
            req,
            to_head,
            close,
        } = request;
        let response = service.call(req).await;
        match write_response(io, response, to_head, close, &mut out).await {
            Ok(true) => {}
            // A closing connection says so: FIN, and over TLS `close_notify` first, without
            // which a TLS client cannot tell the end of the answer from a cut.
            Ok(false) => {
                let _ = io.shutdown().await;
                return Served::Closed;
            }
            Err(_) => return Served::Closed,
        }
    }
}

/// A request as read, and what its head says of the connection.
struct Request {
    req: http::Request<RequestBody>,
    to_head: bool,
    /// The client asked to close after the answer.
    close: bool,
}

enum Next {
    Request(Request),
    Handoff,
    Closed,
}

/// Why a head is refused, with the status it is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Malformed,
    TooLarge,
    Timeout,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::Malformed => StatusCode::BAD_REQUEST,
            Refusal::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Refusal::Timeout => StatusCode::REQUEST_TIMEOUT,
        }
    }
}

/// Reads until a whole request head is at the front of `buf`, and takes it if it is one this
/// reader serves. The header read timeout runs from the first byte of the head, and is set only
/// when the head does not come whole in one read.
async fn read_head<I>(
    io: &mut I,
    buf: &mut BytesMut,
    limits: HeadLimits,
    waiting: &AtomicBool,
    spans: &mut Vec<Span>,
    first: bool,
) -> Result<Next, Refusal>
where
    I: AsyncRead + Unpin,
{
    let mut deadline: Option<Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        if !buf.is_empty() {
            // HTTP/2 with prior knowledge starts with `PRI * HTTP/2.0`.
            if first && buf.starts_with(b"PRI ") {
                return Ok(Next::Handoff);
            }
            match parse(buf, spans, limits)? {
                Some(parsed) => return Ok(parsed),
                None if buf.len() > limits.max_head_bytes => return Err(Refusal::TooLarge),
                None => {}
            }
            if deadline.is_none() {
                deadline = Some(Box::pin(tokio::time::sleep(limits.read_timeout)));
            }
        }
        waiting.store(buf.is_empty(), Ordering::Relaxed);
        let read = std::future::poll_fn(|cx| {
            if let Some(deadline) = deadline.as_mut()
                && deadline.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Err(Refusal::Timeout));
            }
            buf.reserve(READ_CHUNK);
            tokio_util::io::poll_read_buf(Pin::new(&mut *io), cx, buf).map(Ok)
        })
        .await;
        waiting.store(false, Ordering::Relaxed);
        match read? {
            Ok(0) | Err(_) => return Ok(Next::Closed),
            Ok(_) => {}
        }
    }
}

/// The fields whose presence decides whether this reader takes a request.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    /// `Content-Length` other than a single `0`.
    length: bool,
    transfer_encoding: bool,
    upgrade: bool,
    expect: bool,
    connection: bool,
}

impl Seen {
    fn note(&mut self, name: &[u8], value: &[u8]) {
        let is = |field: &str| name.eq_ignore_ascii_case(field.as_bytes());
        match name.len() {
            14 if is("content-length") => self.length |= value.trim_ascii() != b"0",
            17 if is("transfer-encoding") => self.transfer_encoding = true,
            7 if is("upgrade") => self.upgrade = true,
            6 if is("expect") => self.expect = true,
            10 if is("connection") => self.connection = true,
            _ => {}
        }
    }

    fn needs_hyper(self) -> bool {
        self.length || self.transfer_encoding || self.upgrade || self.expect
    }
}

/// Parses the request head at the front of `buf`, if it is all there. A request this reader
/// takes is consumed from `buf`; one it does not is left there for hyper.
fn parse(
    buf: &mut BytesMut,
    spans: &mut Vec<Span>,
    limits: HeadLimits,
) -> Result<Option<Next>, Refusal> {
    spans.clear();
    let (len, method, target, seen) = {
        let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_FIELDS];
        let mut heap;
        let fields = if limits.max_headers <= STACK_FIELDS {
            &mut stack[..limits.max_headers]
        } else {
            heap = Vec::new();
            heap.resize_with(limits.max_headers, MaybeUninit::uninit);
            &mut heap[..]
        };
        let mut request = httparse::Request::new(&mut []);
        let parsed = httparse::ParserConfig::default()
            .parse_request_with_uninit_headers(&mut request, buf, fields)
            .map_err(|e| match e {
                httparse::Error::TooManyHeaders => Refusal::TooLarge,
                _ => Refusal::Malformed,
            })?;
        let httparse::Status::Complete(len) = parsed else {
            return Ok(None);
        };
        if len > limits.max_head_bytes {
            return Err(Refusal::TooLarge);
        }
        let mut seen = Seen::default();
        for field in request.headers.iter() {
            seen.note(field.name.as_bytes(), field.value);
        }
        let method = request.method.unwrap_or_default();
        let path = request.path.unwrap_or_default();
        let origin_form = path.starts_with('/');
        if request.version != Some(1) || method == "CONNECT" || !origin_form || seen.needs_hyper() {
            return Ok(Some(Next::Handoff));
        }
        let base = buf.as_ptr() as usize;
        spans_of(request.headers, base, spans);
        let start = path.as_ptr() as usize - base;
        let target = start..start + path.len();
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| Refusal::Malformed)?;
        (len, method, target, seen)
    };
    let head = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target)).map_err(|_| Refusal::Malformed)?;
    // Room for the fields the proxy adds (`X-Forwarded-*`, the request id) without a rehash.
    let mut headers = crate::headers::new_map(spans.len() + 4);
    for &[name_start, name_end, value_start, value_end] in spans.iter() {
        let name =
            HeaderName::from_bytes(&head[name_start..name_end]).map_err(|_| Refusal::Malformed)?;
        let value = HeaderValue::from_maybe_shared(head.slice(value_start..value_end))
            .map_err(|_| Refusal::Malformed)?;
        headers.append(name, value);
    }
    let close = seen.connection && has_token(&headers, "close");
    let to_head = method == Method::HEAD;
    let mut req = http::Request::new(RequestBody::Empty);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = headers;
    Ok(Some(Next::Request(Request {
        req,
        to_head,
        close,
    })))
}

/// Answers a refused head and closes: the connection's framing can no longer be trusted.
async fn refuse<I: AsyncRead + AsyncWrite + Unpin>(
    io: &mut I,
    refusal: Refusal,
    out: &mut Vec<u8>,
) {
    let status = refusal.status();
    out.clear();
    status_line(status, out);
    out.extend_from_slice(b"content-length: 0\r\nconnection: close\r\n");
    date(out);
    out.extend_from_slice(b"\r\n");
    let _ = write_out(io, out).await;
    let _ = io.shutdown().await;
    linger(io).await;
}

/// Reads and drops what the client still sends, for a while, before the connection closes: a
/// socket closed with unread bytes is reset, and a reset can reach the client before it has read
/// the answer (nginx's `lingering_close`).
async fn linger<I: AsyncRead + Unpin>(io: &mut I) {
    const LINGER: Duration = Duration::from_secs(1);
    const LINGER_BYTES: usize = 64 * 1024;
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut total = 0;
        while total < LINGER_BYTES {
            match tokio::io::AsyncReadExt::read(io, &mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Writes `response`; returns whether the connection can carry another request.
async fn write_response<I: AsyncWrite + Unpin>(
    io: &mut I,
    response: Response<ProxyBody>,
    to_head: bool,
    close: bool,
    out: &mut Vec<u8>,
) -> io::Result<bool> {
    let (mut parts, mut body) = response.into_parts();
    let status = parts.status;
    let mut close = close;
    let no_body_status = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    out.clear();
    status_line(status, out);
    let mut declared = None;
    let (mut has_connection, mut has_date) = (false, false);
    for (name, value) in &parts.headers {
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        if name == header::CONTENT_LENGTH {
            if no_body_status && status != StatusCode::NOT_MODIFIED {
                continue;
            }
            declared = declared.or_else(|| value.to_str().ok()?.trim().parse::<u64>().ok());
        }
        if name == header::CONNECTION {
            has_connection = true;
            close |= value_has_token(value, "close");
        }
        has_date |= name == header::DATE;
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    crate::headers::recycle(std::mem::take(&mut parts.headers));
    // A response to HEAD keeps the fields the instance gave it; nothing is added for a body
    // that is not sent.
    let bodiless = no_body_status || to_head;
    // The bytes of body still to send; `None` when the body goes in chunks.
    let mut left = None;
    if !bodiless {
        left = declared.or_else(|| body.size_hint().exact());
        match left {
            Some(n) if declared.is_none() => {
                let _ = write!(out, "content-length: {n}\r\n");
            }
            Some(_) => {}
            None => field(out, b"transfer-encoding", b"chunked"),
        }
    }
    if close && !has_connection {
        field(out, b"connection", b"close");
    }
    if !has_date {
        date(out);
    }
    out.extend_from_slice(b"\r\n");
    if bodiless {
        drop(body);
        write_out(io, out).await?;
        return Ok(!close);
    }
    loop {
        // Frames that are ready now join the head (and each other) in one write; the gathered
        // bytes go out before waiting for a frame that is not ready.
        let frame = match std::future::poll_fn(|cx| Poll::Ready(poll_frame(&mut body, cx))).await {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                write_out(io, out).await?;
                body.frame().await
            }
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "response body failed; closing the connection");
                write_out(io, out).await?;
                return Ok(false);
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                // Trailers are not passed on.
                Err(_) => continue,
            },
        };
        if data.is_empty() {
            continue;
        }
        if let Some(left) = left.as_mut() {
            if data.len() as u64 > *left {
                tracing::debug!("response body longer than its length; closing the connection");
                write_out(io, out).await?;
                return Ok(false);
            }
            *left -= data.len() as u64;
        } else {
            let _ = write!(out, "{:x}\r\n", data.len());
        }
        gather(io, out, data).await?;
        if left.is_none() {
            out.extend_from_slice(b"\r\n");
        }
    }
    match left {
        Some(0) => {}
        // Shorter than its length: the client must not take it as whole.
        Some(_) => {
            write_out(io, out).await?;
            return Ok(false);
        }
        None => out.extend_from_slice(b"0\r\n\r\n"),
    }
    write_out(io, out).await?;
    Ok(!close)
}

fn poll_frame(
    body: &mut ProxyBody,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<http_body::Frame<Bytes>, crate::body::BodyError>>> {
    Pin::new(body).poll_frame(cx)
}

/// Adds `data` to what is gathered for one write, or writes both when it is large.
async fn gather<I: AsyncWrite + Unpin>(
    io: &mut I,
    out: &mut Vec<u8>,
    data: Bytes,
) -> io::Result<()> {
    if data.len() <= GATHER {
        out.extend_from_slice(&data);
        if out.len() > 4 * GATHER {
            write_out(io, out).await?;
        }
        return Ok(());
    }
    write_out(io, out).await?;
    io.write_all(&data).await?;
    io.flush().await
}

/// Writes and clears what is gathered.
async fn write_out<I: AsyncWrite + Unpin>(io: &mut I, out: &mut Vec<u8>) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    io.write_all(out).await?;
    out.clear();
    io.flush().await
}

fn status_line(status: StatusCode, out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A `Date` field (RFC 9110 §6.6.1), its text made once a second per thread.
fn date(out: &mut Vec<u8>) {
    thread_local! {
        static CACHED: std::cell::RefCell<(u64, String)> =
            const { std::cell::RefCell::new((0, String::new())) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHED.with_borrow_mut(|(at, text)| {
        if *at != second || text.is_empty() {
            *at = second;
            *text = httpdate::fmt_http_date(now);
        }
        field(out, b"date", text.as_bytes());
    });
}

/// An I/O object with bytes already read from it in front: what the proxy's own reader read
/// and did not consume, for hyper to read first.
#[derive(Debug)]
pub struct Rewind<I> {
    pre: Bytes,
    io: I,
}

impl<I> Rewind<I> {
    pub fn new(pre: Bytes, io: I) -> Self {
        Rewind { pre, io }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Rewind<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(out.remaining());
            out.put_slice(&self.pre.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, out)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Rewind<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, data)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;

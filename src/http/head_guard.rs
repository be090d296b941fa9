//! The size limits on an HTTP/1 request head (`limits.max_url_bytes`, `limits.max_header_bytes`),
//! enforced on the connection before actix-http parses the head, so an oversized request gets
//! 414/431 with a SCIM error body like every other refusal.
//!
//! Why here and not only in the middleware: actix-http refuses a head it cannot buffer (128 KiB,
//! a constant), one with more than 96 header fields (431) and a URL of 64 KiB or more (400) on
//! its own, with an empty body and before any middleware runs. [`HeadGuard`] wraps the
//! connection's byte stream, holds each request head back until it is complete, and checks it
//! against our limits (capped below actix's). A head within them passes unchanged; an oversized
//! one is replaced by a small synthetic request for [`refused_path`], which the middleware answers
//! with the SCIM error (logged and counted like any request), and the rest of the connection's
//! input is discarded (the synthetic request says `Connection: close`).
//!
//! The synthetic request is released only once the refused head has ended (its empty line, the
//! end of input, or [`DRAIN_CAP`] bytes): a "lingering close" for the head. Answering while the
//! client is still writing its head would close the socket on unread data, which resets the
//! connection, and the client sees a broken pipe instead of the SCIM error.
//!
//! To know where the next head starts, the guard follows the body framing of each request
//! (`Content-Length`, chunked); anything it does not model (another transfer coding, conflicting
//! lengths, a malformed chunk) turns the guard off for that connection and leaves the bytes to
//! actix-http, which refuses them itself.

use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// actix-http's limit on header fields (`MAX_HEADERS` in its h1 decoder).
pub const MAX_HEADER_FIELDS: usize = 96;
/// Our limits are capped so a head within them always fits actix-http's 128 KiB read buffer and
/// its URI parser (the `http` crate refuses URIs of 64 KiB and more).
const URL_CAP: usize = 60 * 1024;
const HEADERS_CAP: usize = 60 * 1024;
/// Room for the method and the protocol version around the URL on the request line.
const REQUEST_LINE_SLACK: usize = 64;
const READ_CHUNK: usize = 8 * 1024;
/// How much of a refused head the guard reads and drops, waiting for its end, before it answers
/// anyway: far beyond any head a real client sends, small enough to bound a hostile one.
pub const DRAIN_CAP: usize = 1024 * 1024;

/// The limits the guard enforces.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub max_url_bytes: usize,
    pub max_header_bytes: usize,
}

impl HeadLimits {
    pub fn new(max_url_bytes: usize, max_header_bytes: usize) -> HeadLimits {
        HeadLimits { max_url_bytes: max_url_bytes.min(URL_CAP), max_header_bytes: max_header_bytes.min(HEADERS_CAP) }
    }
}

/// Why a head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oversized {
    /// The request target is longer than `max_url_bytes`: 414.
    Url,
    /// The header fields take more than `max_header_bytes`: 431.
    Headers,
    /// More than [`MAX_HEADER_FIELDS`] header fields: 431.
    FieldCount,
}

impl Oversized {
    const ALL: [Oversized; 3] = [Oversized::Url, Oversized::Headers, Oversized::FieldCount];

    fn slug(self) -> &'static str {
        match self {
            Oversized::Url => "url",
            Oversized::Headers => "headers",
            Oversized::FieldCount => "field-count",
        }
    }
}

/// The path of the synthetic request that stands in for a refused head. It carries a random
/// per-process part so a client cannot address it by accident (and gains nothing by guessing
/// it: the answer is an error).
pub fn refused_path(why: Oversized) -> String {
    format!("{}{}", marker(), why.slug())
}

/// Which refusal a request path stands for, if it is one of [`refused_path`]'s.
pub fn refused(path: &str) -> Option<Oversized> {
    let slug = path.strip_prefix(marker())?;
    Oversized::ALL.into_iter().find(|o| o.slug() == slug)
}

fn marker() -> &'static str {
    static MARKER: OnceLock<String> = OnceLock::new();
    MARKER.get_or_init(|| format!("/.scimbridge-refused-{:032x}/", rand::random::<u128>()))
}

/// Where the guard is in the connection's request stream.
#[derive(Debug)]
enum State {
    /// Collecting a request head in `head`.
    Head,
    /// Passing this many body bytes.
    Body(u64),
    Chunked(Chunk),
    /// A head was refused before it ended: the rest of it is read and dropped; the synthetic
    /// request is released at its end.
    Drain(Drain),
    /// A head was refused: everything after it is dropped.
    Discard,
    /// Something the guard does not model: every byte passes, unchecked.
    Passthrough,
}

/// Reading the rest of a refused head.
#[derive(Debug, Clone, Copy)]
struct Drain {
    why: Oversized,
    /// Bytes of the head so far, including those collected before the refusal.
    bytes: usize,
    line: Line,
}

/// What the current line of a head holds so far: an empty line (CRLF or a bare LF) ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    Empty,
    Cr,
    Text,
}

impl Line {
    /// The state after the unfinished last line `partial` (no line break in it).
    fn of(partial: &[u8]) -> Line {
        match partial {
            b"" => Line::Empty,
            b"\r" => Line::Cr,
            _ => Line::Text,
        }
    }
}

impl Drain {
    /// Runs `data` through the refused head; true once the head has ended (or reached
    /// [`DRAIN_CAP`]). What follows it in `data` is dropped with the rest of the input.
    fn step(&mut self, data: &[u8]) -> bool {
        for &b in data {
            self.bytes += 1;
            self.line = match (self.line, b) {
                (Line::Empty | Line::Cr, b'\n') => return true,
                (_, b'\n') => Line::Empty,
                (Line::Empty, b'\r') => Line::Cr,
                _ => Line::Text,
            };
            if self.bytes >= DRAIN_CAP {
                return true;
            }
        }
        false
    }
}

/// Position inside a chunked body (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy)]
enum Chunk {
    Size {
        size: u64,
        digits: u8,
        ext: bool,
    },
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    /// Trailer section; `len` bytes of the current line so far.
    Trailer {
        len: usize,
    },
    TrailerLf {
        len: usize,
    },
}

/// What one byte of chunk framing did.
enum Step {
    Next(Chunk),
    /// The chunked body ended with this byte.
    Done,
    /// Not chunked framing the guard understands.
    Unknown,
}

impl Chunk {
    const START: Chunk = Chunk::Size { size: 0, digits: 0, ext: false };

    fn after_size(size: u64) -> Step {
        Step::Next(if size == 0 { Chunk::Trailer { len: 0 } } else { Chunk::Data(size) })
    }

    fn step(self, b: u8) -> Step {
        match (self, b) {
            (Chunk::Size { size, digits, ext: false }, _) if b.is_ascii_hexdigit() => {
                let d = u64::from((b as char).to_digit(16).unwrap_or(0));
                if digits >= 15 {
                    return Step::Unknown;
                }
                Step::Next(Chunk::Size { size: size * 16 + d, digits: digits + 1, ext: false })
            }
            (Chunk::Size { digits: 0, .. }, _) => Step::Unknown,
            (Chunk::Size { size, .. }, b'\r') => Step::Next(Chunk::SizeLf(size)),
            (Chunk::Size { size, .. }, b'\n') => Chunk::after_size(size),
            (Chunk::Size { size, digits, .. }, b';' | b' ' | b'\t') => {
                Step::Next(Chunk::Size { size, digits, ext: true })
            }
            (Chunk::Size { ext: true, .. }, _) => Step::Next(self),
            (Chunk::SizeLf(size), b'\n') => Chunk::after_size(size),
            (Chunk::DataCr, b'\r') => Step::Next(Chunk::DataLf),
            (Chunk::DataCr | Chunk::DataLf, b'\n') => Step::Next(Chunk::START),
            (Chunk::Trailer { len }, b'\r') => Step::Next(Chunk::TrailerLf { len }),
            (Chunk::Trailer { len: 0 } | Chunk::TrailerLf { len: 0 }, b'\n') => Step::Done,
            (Chunk::Trailer { .. } | Chunk::TrailerLf { .. }, b'\n') => Step::Next(Chunk::Trailer { len: 0 }),
            (Chunk::Trailer { len }, _) => Step::Next(Chunk::Trailer { len: len + 1 }),
            _ => Step::Unknown,
        }
    }
}

/// A connection's byte stream with the request-head limits applied (see the module header).
pub struct HeadGuard<T> {
    inner: T,
    limits: HeadLimits,
    state: State,
    /// The head being collected.
    head: Vec<u8>,
    /// Bytes ready for actix-http, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    eof: bool,
}

impl<T> HeadGuard<T> {
    pub fn new(inner: T, limits: HeadLimits) -> HeadGuard<T> {
        HeadGuard { inner, limits, state: State::Head, head: Vec::new(), out: Vec::new(), out_pos: 0, eof: false }
    }

    /// Runs `data`, fresh from the connection, through the framing; what actix-http may see
    /// lands in `out`.
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.state {
                State::Passthrough => {
                    self.out.extend_from_slice(data);
                    return;
                }
                State::Discard => return,
                State::Drain(drain) => {
                    if drain.step(data) {
                        let why = drain.why;
                        self.release_refusal(why);
                    }
                    return;
                }
                State::Body(left) => {
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                    self.out.extend_from_slice(&data[..n]);
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = State::Head;
                    }
                    data = &data[n..];
                }
                State::Chunked(Chunk::Data(left)) => {
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                    self.out.extend_from_slice(&data[..n]);
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = State::Chunked(Chunk::DataCr);
                    }
                    data = &data[n..];
                }
                State::Chunked(chunk) => {
                    let b = data[0];
                    match chunk.step(b) {
                        Step::Next(next) => *chunk = next,
                        Step::Done => self.state = State::Head,
                        Step::Unknown => self.state = State::Passthrough,
                    }
                    self.out.push(b);
                    data = &data[1..];
                }
                State::Head => {
                    let end = data.iter().position(|&b| b == b'\n');
                    let take = end.map_or(data.len(), |i| i + 1);
                    let line_start = self.head.len();
                    self.head.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    // Checked where the head may end (an empty line) and at the end of each read,
                    // so it never holds more than one read beyond a limit.
                    let empty_line = end.is_some() && matches!(&self.head[line_start..], b"\n" | b"\r\n");
                    if !empty_line && !data.is_empty() {
                        continue;
                    }
                    match self.check_head() {
                        Ok(false) => {}
                        Ok(true) => self.release_head(),
                        Err(why) => self.refuse(why, empty_line),
                    }
                }
            }
        }
    }

    /// Checks the head collected so far; `Ok(true)` once it is complete and within the limits.
    fn check_head(&self) -> Result<bool, Oversized> {
        let complete_len = self.head.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let (complete, partial) = self.head.split_at(complete_len);
        // Empty lines before the request line are ignored (RFC 9112 §2.2), as actix-http does.
        let mut lines = lines_of(complete).skip_while(|l| l.is_empty());
        let Some(request_line) = lines.next() else {
            let too_long = partial.len() > self.limits.max_url_bytes + REQUEST_LINE_SLACK;
            return if too_long { Err(Oversized::Url) } else { Ok(false) };
        };
        let target = request_line.split(|&b| b == b' ').nth(1).unwrap_or_default();
        if target.len() > self.limits.max_url_bytes {
            return Err(Oversized::Url);
        }
        let (mut fields, mut bytes, mut ended) = (0, partial.len(), false);
        for line in lines {
            if line.is_empty() {
                ended = true;
                break;
            }
            fields += 1;
            bytes += line.len() + 2;
        }
        if fields > MAX_HEADER_FIELDS {
            return Err(Oversized::FieldCount);
        }
        if bytes > self.limits.max_header_bytes {
            return Err(Oversized::Headers);
        }
        Ok(ended)
    }

    /// Hands a complete, acceptable head to actix-http and follows its body framing.
    fn release_head(&mut self) {
        // `head` keeps its capacity for the connection's next request.
        self.state = framing(&self.head);
        self.out.extend_from_slice(&self.head);
        self.head.clear();
    }

    /// Refuses the head collected so far: the synthetic request replaces it once the head has
    /// ended (`ended`: its empty line was the last byte read), and the rest of the input is dropped.
    fn refuse(&mut self, why: Oversized, ended: bool) {
        tracing::warn!(reason = ?why, head_bytes = self.head.len(), "Refused an oversized request head.");
        let partial_start = self.head.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let drain = Drain { why, bytes: self.head.len(), line: Line::of(&self.head[partial_start..]) };
        self.head = Vec::new();
        if ended || drain.bytes >= DRAIN_CAP {
            self.release_refusal(why);
        } else {
            self.state = State::Drain(drain);
        }
    }

    /// End of input: an unfinished head goes to actix-http as it is, which sees the truncated
    /// request and closes as it always has; an unfinished refused one still gets its answer (the
    /// client may only have closed its sending side).
    fn end_of_input(&mut self) {
        self.eof = true;
        let head = std::mem::take(&mut self.head);
        match self.state {
            State::Head => self.out.extend_from_slice(&head),
            State::Drain(drain) => self.release_refusal(drain.why),
            _ => {}
        }
    }

    /// Hands actix-http the synthetic request for a refused head; all further input is dropped.
    fn release_refusal(&mut self, why: Oversized) {
        self.state = State::Discard;
        let request = format!("GET {} HTTP/1.1\r\nhost: refused\r\nconnection: close\r\n\r\n", refused_path(why));
        self.out.extend_from_slice(request.as_bytes());
    }
}

/// The lines of `complete` (which ends with a line break, or is empty) without their endings.
fn lines_of(complete: &[u8]) -> impl Iterator<Item = &[u8]> {
    let lines = complete.strip_suffix(b"\n").map(|body| body.split(|&b| b == b'\n'));
    lines.into_iter().flatten().map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// What follows a head: its body framing (RFC 9112 §6.3), or `Passthrough` for what the guard
/// does not model.
fn framing(head: &[u8]) -> State {
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut other_coding = false;
    let mut lines = lines_of(head).skip_while(|l| l.is_empty());
    if lines.next().is_some_and(|request_line| request_line.starts_with(b"CONNECT ")) {
        return State::Passthrough;
    }
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let name = &line[..colon];
        let value = std::str::from_utf8(&line[colon + 1..]).unwrap_or("\u{fffd}").trim();
        if name.eq_ignore_ascii_case(b"content-length") {
            match (value.parse::<u64>(), length) {
                (Ok(n), None) => length = Some(n),
                (Ok(n), Some(m)) if n == m => {}
                _ => return State::Passthrough,
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or("").trim();
            if last.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else {
                other_coding = true;
            }
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            return State::Passthrough;
        }
    }
    match (chunked, other_coding, length) {
        (_, true, _) | (true, _, Some(_)) => State::Passthrough,
        (true, false, None) => State::Chunked(Chunk::START),
        (false, false, Some(n)) if n > 0 => State::Body(n),
        _ => State::Head,
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeadGuard<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.out_pos < this.out.len() {
                let n = (this.out.len() - this.out_pos).min(buf.remaining());
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if matches!(this.state, State::Passthrough) {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut read = ReadBuf::uninit(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            let data = read.filled();
            if data.is_empty() {
                this.end_of_input();
                continue;
            }
            this.feed(data);
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeadGuard<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes, then the end of input, and returns what
    /// actix-http would read.
    fn through(input: &[u8], step: usize, limits: HeadLimits) -> Vec<u8> {
        let mut g = HeadGuard::new((), limits);
        for piece in input.chunks(step) {
            g.feed(piece);
        }
        g.end_of_input();
        g.out
    }

    fn limits() -> HeadLimits {
        HeadLimits::new(100, 200)
    }

    #[test]
    fn heads_within_the_limits_and_their_bodies_pass_unchanged_whatever_the_read_sizes() {
        let stream: &[u8] = b"\r\nGET /scim/v2/Users?filter=x HTTP/1.1\r\nHost: a\r\n\r\n\
            POST /scim/v2/Users HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n{\"a\":\"b\"}\r\n\
            PATCH /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nabcd\r\n0\r\nX-T: 1\r\n\r\n\
            GET /last HTTP/1.1\r\nHost: a\r\n\r\n";
        for step in [1, 2, 3, 7, 64, 4096] {
            assert_eq!(through(stream, step, limits()), stream, "step {step}");
        }
    }

    #[test]
    fn a_body_that_looks_like_a_huge_head_is_not_mistaken_for_one() {
        let body = vec![b'x'; 5000];
        let mut stream = format!("POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        stream.extend_from_slice(&body);
        stream.extend_from_slice(b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(through(&stream, 1000, limits()), stream);
    }

    fn refused_to(out: &[u8]) -> Option<Oversized> {
        let text = std::str::from_utf8(out).ok()?;
        let path = text.strip_prefix("GET ")?.split(' ').next()?;
        assert!(text.ends_with("connection: close\r\n\r\n"), "{text}");
        refused(path)
    }

    #[test]
    fn an_oversized_url_is_replaced_even_before_its_line_ends() {
        let long = format!("GET /scim/v2/Users?filter={} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(200));
        assert_eq!(refused_to(&through(long.as_bytes(), 50, limits())), Some(Oversized::Url));
        let endless = format!("GET /{}", "a".repeat(100_000));
        assert_eq!(refused_to(&through(endless.as_bytes(), 8192, limits())), Some(Oversized::Url));
    }

    #[test]
    fn oversized_or_too_many_header_fields_are_replaced() {
        let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "b".repeat(300));
        assert_eq!(refused_to(&through(big.as_bytes(), 64, limits())), Some(Oversized::Headers));
        let many: String = (0..100).map(|i| format!("X-{i}: 1\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        let roomy = HeadLimits::new(100, 10_000);
        assert_eq!(refused_to(&through(many.as_bytes(), 64, roomy)), Some(Oversized::FieldCount));
    }

    /// The lingering close for the head: nothing reaches actix-http (which would answer and close
    /// on unread input, resetting the connection) until the refused head has ended, however it
    /// arrives; then the synthetic request does, and what follows the head is dropped.
    #[test]
    fn a_refused_head_is_answered_only_after_its_end() {
        let url = format!("GET /{} HTTP/1.1\r\nHost: a\r\nX-Pad: {}\r\n\r\n", "a".repeat(300), "p".repeat(5000));
        let headers = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\nX-More: 1\r\n\r\n", "b".repeat(3000));
        let bare_lf = format!("GET / HTTP/1.1\nHost: a\nX-Big: {}\n\n", "b".repeat(3000));
        let cases = [(url, Oversized::Url), (headers, Oversized::Headers), (bare_lf, Oversized::Headers)];
        for (head, why) in cases {
            let mut stream = head.clone().into_bytes();
            stream.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
            for step in [1, 2, 3, 7, 64, 1000, 4096] {
                let mut g = HeadGuard::new((), limits());
                let mut fed = 0;
                for piece in stream.chunks(step) {
                    g.feed(piece);
                    fed += piece.len();
                    if fed < head.len() {
                        assert!(g.out.is_empty(), "{why:?} step {step}: released at {fed} of {}", head.len());
                    }
                }
                assert_eq!(refused_to(&g.out), Some(why), "step {step}");
                assert!(!String::from_utf8_lossy(&g.out).contains("/next"));
            }
        }
    }

    #[test]
    fn a_refused_head_without_an_end_is_answered_at_the_end_of_input_or_the_drain_cap() {
        let endless = format!("GET / HTTP/1.1\r\nX-Big: {}", "b".repeat(DRAIN_CAP));
        let mut g = HeadGuard::new((), limits());
        let mut fed = 0;
        for piece in endless.as_bytes().chunks(READ_CHUNK) {
            g.feed(piece);
            fed += piece.len();
            if fed < DRAIN_CAP {
                assert!(g.out.is_empty(), "released at {fed}");
            }
        }
        assert_eq!(refused_to(&g.out), Some(Oversized::Headers), "released at the cap, before the end of input");
        let mut g = HeadGuard::new((), limits());
        g.feed(format!("GET / HTTP/1.1\r\nX-Big: {}", "b".repeat(5000)).as_bytes());
        assert!(g.out.is_empty());
        g.end_of_input();
        assert_eq!(refused_to(&g.out), Some(Oversized::Headers), "released at the end of input");
    }

    #[test]
    fn after_a_refusal_the_rest_of_the_input_is_dropped() {
        let mut stream = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(200)).into_bytes();
        stream.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
        let out = through(&stream, 4096, limits());
        assert_eq!(refused_to(&out), Some(Oversized::Url));
        assert!(!String::from_utf8_lossy(&out).contains("/next"));
    }

    #[test]
    fn unmodelled_framing_turns_the_guard_off_for_the_connection() {
        let mut stream = b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec();
        stream.extend_from_slice(format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(500)).as_bytes());
        assert_eq!(through(&stream, 16, limits()), stream, "passed to actix-http as it came");
        let bad_chunk = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /b HTTP/1.1\r\n\r\n";
        assert_eq!(through(bad_chunk, 5, limits()), bad_chunk);
    }

    #[test]
    fn limits_are_capped_below_what_actix_http_can_parse() {
        let l = HeadLimits::new(1 << 20, 1 << 20);
        assert!(l.max_url_bytes < 64 * 1024 && l.max_url_bytes + l.max_header_bytes + 1024 < 128 * 1024);
        assert_eq!(refused(&refused_path(Oversized::Headers)), Some(Oversized::Headers));
        assert_eq!(refused("/scim/v2/Users"), None);
    }
}

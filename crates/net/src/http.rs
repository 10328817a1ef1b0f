//! HTTP/1.x requests and responses in a TCP stream, in the fields of
//! Zeek's `http.log`. Headers are parsed with the `httparse` crate; bodies
//! are framed (RFC 9112 §6: Content-Length, chunked, or until close) and
//! counted, never kept.

use serde::Serialize;

/// Largest header block buffered, in bytes; past this the direction is
/// not analysed further.
const MAX_HEAD: usize = 64 << 10;
/// Most headers parsed per message.
const MAX_HEADERS: usize = 128;

/// One request and its response, as Zeek's `http.log` names its fields.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct HttpRecord {
    /// Capture time of the request's first bytes, Unix ns.
    #[serde(skip)]
    pub ts_ns: i64,
    /// Position of this transaction in the connection, from 1.
    pub trans_depth: u32,
    /// Request method.
    pub method: String,
    /// `Host` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Request target.
    pub uri: String,
    /// `Referer` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// HTTP version of the request (`1.0`, `1.1`).
    pub version: String,
    /// `User-Agent` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Request body length, in bytes (after de-chunking).
    pub request_body_len: u64,
    /// Response body length, in bytes (after de-chunking).
    pub response_body_len: u64,
    /// Response status code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Response reason phrase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_msg: Option<String>,
    /// `Content-Type` of the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resp_content_type: Option<String>,
}

/// Whether the first bytes a client sent look like an HTTP/1.x request.
pub fn looks_like_http(first: &[u8]) -> bool {
    const METHODS: [&[u8]; 9] = [b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ", b"TRACE "];
    METHODS.iter().any(|m| first.starts_with(m))
}

/// How the body of the current message is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    /// Reading a header block.
    Head,
    /// This many body bytes are left.
    Length(u64),
    /// Chunked: reading a chunk-size line.
    ChunkSize,
    /// Chunked: this many chunk bytes, then CRLF, are left.
    ChunkData(u64),
    /// Chunked: the CRLF after a chunk.
    ChunkEnd,
    /// Chunked: trailer lines until an empty one.
    Trailer,
    /// Until the connection closes.
    UntilClose,
}

#[derive(Debug)]
struct Side {
    buf: Vec<u8>,
    body: Body,
    stopped: bool,
}

impl Default for Side {
    fn default() -> Self {
        Self { buf: Vec::new(), body: Body::Head, stopped: false }
    }
}

/// The HTTP analyser of one TCP connection.
#[derive(Debug, Default)]
pub struct HttpState {
    client: Side,
    server: Side,
    /// Transactions in request order; responses fill them in order.
    txs: Vec<HttpRecord>,
    /// Index of the transaction the next response answers.
    next_response: usize,
    /// Index of the transaction whose body is being counted, per side.
    req_body_of: Option<usize>,
    resp_body_of: Option<usize>,
}

impl HttpState {
    /// Takes in-order stream bytes from the client or the server.
    pub fn on_data(&mut self, from_client: bool, ts_ns: i64, mut bytes: &[u8]) {
        loop {
            let side = if from_client { &mut self.client } else { &mut self.server };
            if side.stopped || bytes.is_empty() && side.buf.is_empty() {
                return;
            }
            match side.body {
                Body::Head => {
                    side.buf.extend_from_slice(bytes);
                    bytes = &[];
                    let buf = std::mem::take(&mut side.buf);
                    match if from_client { self.request_head(ts_ns, &buf) } else { self.response_head(&buf) } {
                        Some(used) => bytes_rest(&mut self.side(from_client).buf, &buf[used..]),
                        None => {
                            let side = self.side(from_client);
                            if buf.len() > MAX_HEAD {
                                side.stopped = true;
                            }
                            side.buf = buf;
                            return;
                        }
                    }
                }
                _ => {
                    // Body bytes are counted, not kept: take them straight
                    // from `bytes` when nothing is buffered.
                    let buffered = !self.side(from_client).buf.is_empty();
                    let owned;
                    let input: &[u8] = if buffered {
                        let mut b = std::mem::take(&mut self.side(from_client).buf);
                        b.extend_from_slice(bytes);
                        owned = b;
                        &owned
                    } else {
                        bytes
                    };
                    let Some(used) = self.body_bytes(from_client, input) else {
                        let rest = input.to_vec();
                        self.side(from_client).buf = rest;
                        return;
                    };
                    if buffered {
                        bytes_rest(&mut self.side(from_client).buf, &input[used..]);
                        bytes = &[];
                    } else {
                        bytes = &bytes[used..];
                    }
                }
            }
        }
    }

    fn side(&mut self, from_client: bool) -> &mut Side {
        if from_client {
            &mut self.client
        } else {
            &mut self.server
        }
    }

    /// Parses a request head; `None` until it is complete.
    fn request_head(&mut self, ts_ns: i64, buf: &[u8]) -> Option<usize> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let used = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return None,
            Err(_) => {
                self.client.stopped = true;
                return None;
            }
        };
        let h = |name: &str| header(req.headers, name);
        let framing = framing(&h("transfer-encoding"), &h("content-length"));
        let rec = HttpRecord {
            ts_ns,
            trans_depth: self.txs.len() as u32 + 1,
            method: req.method.unwrap_or_default().to_owned(),
            host: h("host"),
            uri: req.path.unwrap_or_default().to_owned(),
            referrer: h("referer"),
            version: format!("1.{}", req.version.unwrap_or(1)),
            user_agent: h("user-agent"),
            ..HttpRecord::default()
        };
        self.txs.push(rec);
        self.req_body_of = Some(self.txs.len() - 1);
        self.client.body = framing.unwrap_or(Body::Length(0));
        Some(used)
    }

    /// Parses a response head; `None` until it is complete.
    fn response_head(&mut self, buf: &[u8]) -> Option<usize> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let used = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return None,
            Err(_) => {
                self.server.stopped = true;
                return None;
            }
        };
        let code = resp.code.unwrap_or(0);
        let h = |name: &str| header(resp.headers, name);
        if (100..200).contains(&code) {
            // Interim response: the final one follows.
            self.server.body = Body::Length(0);
            return Some(used);
        }
        let idx = self.next_response;
        let head_request = self.txs.get(idx).is_some_and(|t| t.method == "HEAD");
        if idx >= self.txs.len() {
            self.txs.push(HttpRecord { trans_depth: idx as u32 + 1, ..HttpRecord::default() });
        }
        let t = &mut self.txs[idx];
        t.status_code = Some(code);
        t.status_msg = resp.reason.map(str::to_owned);
        t.resp_content_type = h("content-type");
        self.next_response += 1;
        self.resp_body_of = Some(idx);
        let no_body = head_request || code == 204 || code == 304;
        self.server.body = if no_body { Body::Length(0) } else { framing(&h("transfer-encoding"), &h("content-length")).unwrap_or(Body::UntilClose) };
        Some(used)
    }

    /// Counts body bytes of the current message; returns how many of
    /// `input` were used, or `None` when more input is needed.
    fn body_bytes(&mut self, from_client: bool, input: &[u8]) -> Option<usize> {
        let of = if from_client { self.req_body_of } else { self.resp_body_of };
        let count = |n: u64, txs: &mut Vec<HttpRecord>| {
            if let Some(t) = of.and_then(|i| txs.get_mut(i)) {
                if from_client {
                    t.request_body_len += n;
                } else {
                    t.response_body_len += n;
                }
            }
        };
        let side = if from_client { &mut self.client } else { &mut self.server };
        match side.body {
            Body::Head => Some(0),
            Body::Length(0) => {
                side.body = Body::Head;
                Some(0)
            }
            _ if input.is_empty() => None,
            Body::Length(n) | Body::ChunkData(n) => {
                let take = (input.len() as u64).min(n);
                count(take, &mut self.txs);
                let side = if from_client { &mut self.client } else { &mut self.server };
                let left = n - take;
                side.body = match (side.body, left) {
                    (Body::Length(_), 0) => Body::Head,
                    (Body::Length(_), l) => Body::Length(l),
                    (_, 0) => Body::ChunkEnd,
                    (_, l) => Body::ChunkData(l),
                };
                Some(take as usize)
            }
            Body::UntilClose => {
                count(input.len() as u64, &mut self.txs);
                Some(input.len())
            }
            Body::ChunkSize | Body::ChunkEnd | Body::Trailer => {
                let Some(eol) = input.windows(2).position(|w| w == b"\r\n") else {
                    if input.len() > MAX_HEAD {
                        side.stopped = true;
                    }
                    return None;
                };
                let line = &input[..eol];
                side.body = match side.body {
                    Body::ChunkEnd => Body::ChunkSize,
                    Body::Trailer if line.is_empty() => Body::Head,
                    Body::Trailer => Body::Trailer,
                    _ => {
                        let hexpart = line.split(|b| *b == b';').next().unwrap_or_default();
                        match std::str::from_utf8(hexpart).ok().and_then(|s| u64::from_str_radix(s.trim(), 16).ok()) {
                            Some(0) => Body::Trailer,
                            Some(n) => Body::ChunkData(n),
                            None => {
                                side.stopped = true;
                                return None;
                            }
                        }
                    }
                };
                Some(eol + 2)
            }
        }
    }

    /// The stream had a hole in this direction: stop analysing it.
    pub fn on_gap(&mut self, from_client: bool) {
        self.side(from_client).stopped = true;
    }

    /// Every transaction seen, in request order.
    pub fn finish(self) -> Vec<HttpRecord> {
        self.txs
    }
}

/// The value of header `name` (case-insensitive), as text.
fn header(headers: &[httparse::Header<'_>], name: &str) -> Option<String> {
    headers.iter().find(|x| x.name.eq_ignore_ascii_case(name)).map(|x| String::from_utf8_lossy(x.value).into_owned())
}

fn bytes_rest(buf: &mut Vec<u8>, rest: &[u8]) {
    buf.clear();
    buf.extend_from_slice(rest);
}

/// The body framing from `Transfer-Encoding` and `Content-Length`
/// (RFC 9112 §6.3); `None` when neither is given.
fn framing(te: &Option<String>, cl: &Option<String>) -> Option<Body> {
    if te.as_deref().is_some_and(|t| t.to_ascii_lowercase().contains("chunked")) {
        return Some(Body::ChunkSize);
    }
    cl.as_deref().and_then(|c| c.trim().parse::<u64>().ok()).map(Body::Length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_pipelined_requests_with_responses_across_segments() {
        let mut s = HttpState::default();
        let req =
            b"GET /a HTTP/1.1\r\nHost: example.org\r\nUser-Agent: curl/7.88.1\r\n\r\nPOST /b HTTP/1.1\r\nHost: example.org\r\nContent-Length: 5\r\n\r\nhello";
        for chunk in req.chunks(7) {
            s.on_data(true, 1, chunk);
        }
        let resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno";
        for chunk in resp.chunks(5) {
            s.on_data(false, 2, chunk);
        }
        let t = s.finish();
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].method.as_str(), t[0].uri.as_str(), t[0].host.as_deref(), t[0].user_agent.as_deref()),
            ("GET", "/a", Some("example.org"), Some("curl/7.88.1"))
        );
        assert_eq!((t[0].status_code, t[0].response_body_len, t[0].resp_content_type.as_deref()), (Some(200), 7, Some("text/plain")));
        assert_eq!(
            (t[1].method.as_str(), t[1].request_body_len, t[1].status_code, t[1].status_msg.as_deref(), t[1].response_body_len),
            ("POST", 5, Some(404), Some("Not Found"), 2)
        );
        assert_eq!((t[0].trans_depth, t[1].trans_depth), (1, 2));
    }
}

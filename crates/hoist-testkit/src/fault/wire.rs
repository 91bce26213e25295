//! The proxy's HTTP/1.1 framing: reading a message head, and copying (or cutting, or
//! corrupting) a body of any framing through a bounded buffer.

use std::io::{self, BufRead, Read, Write};

use super::{BUF, MAX_HEAD};

/// A parsed message head: the raw start line, header fields, and derived facts.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) start: String,
    pub(super) headers: Vec<(String, String)>,
}

impl Head {
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .any(|(_, v)| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    pub(super) fn body_kind(&self) -> io::Result<BodyKind> {
        if self.has_token("transfer-encoding", "chunked") {
            return Ok(BodyKind::Chunked);
        }
        match self.get("content-length") {
            Some(v) => v
                .trim()
                .parse()
                .map(BodyKind::Length)
                .map_err(|_| bad(format!("bad Content-Length {v:?}"))),
            None => Ok(BodyKind::Length(0)),
        }
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut s = format!("{}\r\n", self.start);
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s.push_str("\r\n");
        s.into_bytes()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyKind {
    Length(u64),
    Chunked,
    UntilClose,
}

pub(super) fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Read a head (start line + fields); `Ok(None)` on a clean EOF before any byte.
pub(super) fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line)?;
        if n == 0 {
            if lines.is_empty() {
                return Ok(None);
            }
            return Err(bad("connection closed inside a message head".into()));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(bad("message head too large".into()));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            if lines.is_empty() {
                continue; // tolerate stray CRLF between messages
            }
            break;
        }
        lines.push(line);
    }
    let start = lines.remove(0);
    let headers = lines
        .into_iter()
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Ok(Some(Head { start, headers }))
}

/// How to transform a body while copying it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct BodyPlan {
    /// Stop after this many payload bytes and report `cut`.
    pub(super) limit: Option<u64>,
    /// Flip the first payload byte.
    pub(super) corrupt: bool,
    /// Pass at most this many payload bytes a second (a slow link).
    pub(super) rate: Option<u64>,
}

/// Copy a body of the given kind from `r` to `w` (chunk framing re-emitted as received).
/// Returns (payload bytes copied, whether the limit cut it short).
pub(super) fn copy_body(
    r: &mut impl BufRead,
    w: &mut impl Write,
    kind: BodyKind,
    plan: BodyPlan,
    on_payload: &mut dyn FnMut(u64),
) -> io::Result<(u64, bool)> {
    let mut buf = vec![0u8; BUF];
    let mut copied = 0u64;
    let mut corrupt = plan.corrupt;
    let began = std::time::Instant::now();
    // A throttled body goes in pieces of a twentieth of a second's worth, each sent on time.
    let piece = plan
        .rate
        .map_or(BUF as u64, |r| (r / 20).clamp(1, BUF as u64));
    // Copy up to `n` payload bytes (or to EOF when n is None); returns false when cut.
    let mut payload = |r: &mut dyn Read,
                       w: &mut dyn Write,
                       n: Option<u64>,
                       copied: &mut u64|
     -> io::Result<bool> {
        let mut left = n;
        loop {
            let want = left.map_or(piece, |l| l.min(piece));
            if want == 0 {
                return Ok(true);
            }
            let room = plan.limit.map_or(want, |lim| want.min(lim - *copied));
            if room == 0 {
                return Ok(false);
            }
            let got = r.read(&mut buf[..room as usize])?;
            if got == 0 {
                if n.is_none() {
                    return Ok(true);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed inside a body",
                ));
            }
            if corrupt {
                buf[0] ^= 0xff;
                corrupt = false;
            }
            if let Some(rate) = plan.rate {
                let due = std::time::Duration::from_secs_f64(*copied as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(began.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            w.write_all(&buf[..got])?;
            on_payload(got as u64);
            *copied += got as u64;
            if let Some(l) = left.as_mut() {
                *l -= got as u64;
            }
        }
    };
    match kind {
        BodyKind::Length(n) => {
            let done = payload(r, w, Some(n), &mut copied)?;
            Ok((copied, !done))
        }
        BodyKind::UntilClose => {
            let done = payload(r, w, None, &mut copied)?;
            Ok((copied, !done))
        }
        BodyKind::Chunked => loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Err(bad("peer closed inside chunked body".into()));
            }
            let size_hex = line.trim().split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size_hex, 16)
                .map_err(|_| bad(format!("bad chunk size {size_hex:?}")))?;
            if size == 0 {
                w.write_all(line.as_bytes())?;
                // Trailers, up to and including the empty line.
                loop {
                    let mut t = String::new();
                    if r.read_line(&mut t)? == 0 {
                        break;
                    }
                    w.write_all(t.as_bytes())?;
                    if t.trim().is_empty() {
                        break;
                    }
                }
                return Ok((copied, false));
            }
            let room = plan.limit.map_or(size, |lim| size.min(lim - copied));
            if room < size {
                // Cut inside this chunk: announce it whole, send only part of it.
                w.write_all(line.as_bytes())?;
                payload(r, w, Some(room), &mut copied)?;
                return Ok((copied, true));
            }
            w.write_all(line.as_bytes())?;
            payload(r, w, Some(size), &mut copied)?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf)?;
            w.write_all(&crlf)?;
        },
    }
}

/// Read and drop a body (for canned responses).
pub(super) fn discard_body(r: &mut impl BufRead, kind: BodyKind) -> io::Result<()> {
    copy_body(r, &mut io::sink(), kind, BodyPlan::default(), &mut |_| {}).map(|_| ())
}

pub(super) fn response_has_body(req_method: &str, status: u16) -> bool {
    !(req_method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&status)
        || status == 204
        || status == 304)
}

pub(super) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Fault",
    }
}

//! Why a run failed, in a few words for the report, from what it wrote to its log.

/// The longest reason kept, in characters.
const REASON_MAX: usize = 200;

/// Why a run failed, from what it wrote to its log during that run: the last line that reads
/// like an error (mentions `error`, `fail`, `denied`, or an HTTP 4xx/5xx status), else the last
/// non-empty line, without the bench's own `$ command` and `bench:` lines, cut to 200
/// characters; of a logrus line only its `msg`, and nothing from an HTML error page on. A
/// recognised HTTP status is put first: `HTTP 413: ...`.
pub fn reason(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("$ ") && !l.starts_with("bench: "))
        .collect();
    let errorish = |l: &&&str| {
        let low = l.to_ascii_lowercase();
        ["error", "fail", "denied", "too large", "refused"]
            .iter()
            .any(|w| low.contains(w))
            || http_status(l).is_some()
    };
    let Some(line) = lines.iter().rev().find(errorish).or(lines.last()) else {
        return "exited non-zero without output".into();
    };
    // logrus lines (skopeo): keep the message; never keep an HTML error page.
    let mut msg = line.split_once("msg=\"").map_or(*line, |(_, m)| m);
    if let Some(i) = msg.to_ascii_lowercase().find("<html") {
        msg = &msg[..i];
    }
    let msg = msg.trim_end_matches([' ', ',', ':', '"', '\\']);
    let mut reason = match http_status(line) {
        Some(code) if !msg.starts_with(&format!("HTTP {code}")) => format!("HTTP {code}: {msg}"),
        _ => msg.to_string(),
    };
    if reason.chars().count() > REASON_MAX {
        reason = reason.chars().take(REASON_MAX - 3).collect::<String>() + "...";
    }
    reason
}

/// An HTTP error status (4xx/5xx) named in `text`: after `status`, `status code`,
/// `statuscode:` or `http`, or nginx's `Request Entity Too Large` page title alone.
pub fn http_status(text: &str) -> Option<u16> {
    let low = text.to_ascii_lowercase();
    if low.contains("request entity too large") || low.contains("content too large") {
        return Some(413);
    }
    let low = low.as_str();
    ["status code", "statuscode", "status", "http"]
        .iter()
        .flat_map(|key| low.match_indices(key).map(|(i, _)| &low[i + key.len()..]))
        .find_map(|rest| {
            let rest = rest.trim_start_matches([':', ' ', '=']);
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let code: u16 = digits.parse().ok().filter(|_| digits.len() == 3)?;
            (400..600).contains(&code).then_some(code)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reasons_name_the_status_without_html() {
        // Verbatim from skopeo 1.9 and docker 20.10 pushing through nginx's 64 MiB limit.
        let skopeo = "$ skopeo copy --quiet a b\ntime=\"2026-11-23T08:44:55Z\" level=fatal \
            msg=\"writing blob: uploading layer chunked: StatusCode: 413, <html>\\r\\n<head>\
            <title>413 Request Entity Too Large<...\"\n";
        assert_eq!(
            reason(skopeo),
            "HTTP 413: writing blob: uploading layer chunked: StatusCode: 413"
        );
        let docker = "$ docker push -q x\nerror parsing HTTP 413 response body: invalid \
            character '<' looking for beginning of value: \"<html>\\r\\n<head><title>413 \
            Request Entity Too Large</title></head></html>\\r\\n\"\n";
        let r = reason(docker);
        assert!(
            r.starts_with("HTTP 413: error parsing HTTP 413 response body"),
            "{r}"
        );
        assert!(!r.contains("<html"), "{r}");
        // Without an error-looking line, the last line; a status elsewhere is found too.
        assert_eq!(reason("$ x\nstarting\nstopped early\n"), "stopped early");
        assert_eq!(
            reason("pushing\nunexpected status code 502 from server\n"),
            "HTTP 502: unexpected status code 502 from server"
        );
        assert_eq!(reason("$ x\n"), "exited non-zero without output");
        // Port numbers and digests are not statuses.
        assert_eq!(http_status("dial 127.0.0.1:404 sha256:413abc"), None);
        let long = "error: ".to_string() + &"x".repeat(400);
        assert_eq!(reason(&long).chars().count(), REASON_MAX);
    }
}

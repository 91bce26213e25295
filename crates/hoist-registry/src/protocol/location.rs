//! `Location` resolution, loopback detection and credential stripping for URLs.

use std::net::IpAddr;

use url::Url;

/// Resolve a `Location` header against the URL of the request that returned it.
///
/// Absolute locations are taken as they are; relative ones (`/v2/...?_state=...`) are joined to
/// the request URL, keeping their query. Returns `None` for a value that is not a URL, one
/// with a scheme other than http/https, or one longer than [`MAX_LOCATION_LEN`].
pub fn resolve_location(request_url: &Url, location: &str) -> Option<Url> {
    let location = location.trim();
    if location.is_empty() || location.len() > MAX_LOCATION_LEN {
        return None;
    }
    let url = request_url.join(location).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.as_str().len() <= MAX_LOCATION_LEN)
        .then_some(url)
}

/// The longest `Location` followed. Pre-signed storage URLs run to a few KiB; the HTTP stack
/// cannot send a request line much over 64 KiB, and a longer one is the registry's fault, not
/// something to report as bad input.
pub const MAX_LOCATION_LEN: usize = 16 * 1024;

/// Query keys whose values are redacted when a URL is shown (pre-signed storage redirects).
const SECRET_QUERY_KEYS: &[&str] = &["token", "signature", "credential", "sig", "password"];

/// The URL as it may be shown to a human: no user name, no password, and pre-signed query
/// values (`X-Amz-Signature=...`, `token=...`) replaced by `***`; at most [`MAX_SHOWN_URL`]
/// bytes (plus a `…`).
pub fn display_url(url: &Url) -> String {
    let mut u = url.clone();
    // Both setters only fail for URLs that cannot have credentials at all.
    let _ = u.set_username("");
    let _ = u.set_password(None);
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                let secret = SECRET_QUERY_KEYS.iter().any(|s| lower.contains(s));
                (
                    k.into_owned(),
                    if secret { "***".into() } else { v.into_owned() },
                )
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let mut shown = u.to_string();
    if shown.len() > MAX_SHOWN_URL {
        // URLs come from the registry (`Location`, realms): a hostile one may be huge.
        let mut cut = MAX_SHOWN_URL;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
        shown.push('…');
    }
    shown
}

/// The longest URL [`display_url`] returns (longer ones are cut, marked with `…`).
pub const MAX_SHOWN_URL: usize = 512;

/// True for hosts that may be spoken to over plain HTTP without the caller saying so:
/// `127.0.0.0/8`, `::1` and exactly `localhost` (not `localhost.example.com`).
/// `host` is a host name or IP literal, optionally with a port and IPv6 brackets.
pub fn is_loopback_host(host: &str) -> bool {
    let name = host_without_port(host);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `host[:port]` or `[v6]:port` to the bare host (brackets removed).
pub fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        // A single colon is a port separator; more than one means a bare IPv6 literal.
        Some((h, port)) if !h.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Whether `url` is on `registry`, a `host[:port]` as the user named it. Hosts compare without
/// regard to case, and a missing port is the URL scheme's default on both sides: the URL parser
/// turns `https://reg:443/` into `https://reg/`, which is still the same server.
pub fn is_on(url: &Url, registry: &str) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = host_without_port(registry);
    let default = match url.scheme() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    let port = port_of(registry).or(default);
    host.eq_ignore_ascii_case(name) && port == url.port_or_known_default()
}

/// The port of a `host[:port]` (`[v6]:port` included), if it names one.
fn port_of(host_port: &str) -> Option<u16> {
    let rest = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']')?.1.strip_prefix(':')?,
        None => match host_port.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => p,
            _ => return None,
        },
    };
    rest.parse().ok()
}

/// The repository a registry API URL is about (`/v2/NAME/manifests/...`, `/blobs/...`,
/// `/tags/list`); `None` for any other URL (`/v2/`, a token realm, a storage redirect).
pub fn repository_of(url: &Url) -> Option<&str> {
    let path = url.path().strip_prefix("/v2/")?;
    // The last endpoint segment: what follows it (a tag, a digest, `uploads/ID`, `list`)
    // holds none, a repository name may.
    let end = ["/manifests/", "/blobs/", "/tags/"]
        .iter()
        .filter_map(|segment| path.rfind(segment))
        .max()?;
    Some(&path[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_of_an_api_url() {
        let repo = |u: &str| repository_of(&url(u)).map(str::to_owned);
        let on = "https://reg.example:5000";
        for (path, want) in [
            ("/v2/team/app/manifests/1", Some("team/app")),
            ("/v2/a/blobs/sha256:ab", Some("a")),
            ("/v2/a/b/blobs/uploads/uuid?_state=x", Some("a/b")),
            ("/v2/team/app/tags/list?n=100", Some("team/app")),
            // A repository named like an endpoint is still read whole.
            ("/v2/x/tags/y/manifests/1", Some("x/tags/y")),
            ("/v2/", None),
            ("/token?scope=repository:a:pull", None),
            ("/v2/manifests/1", None),
        ] {
            assert_eq!(repo(&format!("{on}{path}")).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn a_url_is_on_its_registry_whatever_the_default_port_and_case() {
        let on = |u: &str, r: &str| is_on(&url(u), r);
        assert!(on("https://reg.example.com/v2/", "reg.example.com:443"));
        assert!(on("https://reg.example.com:443/v2/", "reg.example.com"));
        assert!(on("http://localhost/v2/", "localhost:80"));
        assert!(on("https://reg.example.com/v2/", "REG.Example.com"));
        assert!(on("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"));
        assert!(on("http://[::1]:5000/v2/", "[::1]:5000"));
        assert!(on("https://[::1]/v2/", "[::1]"));
        // Another port or another host is another server.
        assert!(!on("https://reg.example.com:5000/v2/", "reg.example.com"));
        assert!(!on("https://reg.example.com/v2/", "reg.example.com:5000"));
        assert!(!on("http://reg.example.com/v2/", "reg.example.com:443"));
        assert!(!on("https://cdn.example.com/blob", "reg.example.com"));
        assert!(!on("https://reg.example.com.evil/v2/", "reg.example.com"));
        assert!(!on("http://[::1]:5001/v2/", "[::1]:5000"));
    }

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    #[test]
    fn relative_location_keeps_query() {
        let req = url("http://127.0.0.1:5000/v2/a/b/blobs/uploads/");
        let got = resolve_location(&req, "/v2/a/b/blobs/uploads/uuid?_state=abc%3D&x=1")
            .expect("resolves");
        assert_eq!(
            got.as_str(),
            "http://127.0.0.1:5000/v2/a/b/blobs/uploads/uuid?_state=abc%3D&x=1"
        );
    }

    #[test]
    fn absolute_location_wins_and_bad_schemes_rejected() {
        let req = url("http://127.0.0.1:5000/v2/a/blobs/uploads/");
        let got = resolve_location(&req, "https://other:443/up/1?_state=z").expect("absolute");
        assert_eq!(got.host_str(), Some("other"));
        assert_eq!(got.query(), Some("_state=z"));
        assert!(resolve_location(&req, "").is_none());
        assert!(resolve_location(&req, "file:///etc/passwd").is_none());
        assert!(resolve_location(&req, "http://[::1").is_none());
    }

    #[test]
    fn credentials_and_signatures_are_stripped() {
        let u = url(
            "https://user:hunter2@reg.example/v2/x?X-Amz-Signature=abc&_state=s&access_token=t",
        );
        let shown = display_url(&u);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("user@"), "{shown}");
        assert!(!shown.contains("abc"), "{shown}");
        assert!(!shown.contains("=t"), "{shown}");
        assert!(shown.contains("_state=s"), "{shown}");
    }

    #[test]
    fn loopback_is_exact() {
        for h in [
            "localhost",
            "LOCALHOST:5000",
            "127.0.0.1",
            "127.8.9.10:80",
            "::1",
            "[::1]:5000",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "localhost.example.com",
            "localhostx",
            "10.0.0.1",
            "192.168.1.1:5000",
            "example.com",
            "[::2]:1",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}

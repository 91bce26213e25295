//! Building a `hoist-registry` client from the [`Config`], and turning its progress events into
//! the CLI's; `hoist tags` and `hoist delete`.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use hoist_oci::{Digest, Reference};
use hoist_registry::{Client, Credentials, Repo, RetryPolicy};

use crate::config::Config;
use crate::errors::sanitize;
use crate::progress::{Event, LayerState, Reporter};
use crate::size::human;
use crate::transport::Location;

/// A client when any of `ends` is a registry (`None` for a copy between local stores).
///
/// # Errors
/// As [`client`].
pub fn client_for(config: &Config, ends: &[&Location]) -> anyhow::Result<Option<Client>> {
    let talks_to_registry = ends.iter().any(|l| matches!(l, Location::Registry { .. }));
    match talks_to_registry {
        true => Ok(Some(client(config)?)),
        false => Ok(None),
    }
}

/// A registry client configured by the command line: the run's shared one when it has one
/// ([`Config::registry_client`]), else a new one. It keeps upload state in the cache only
/// for a job that uploads ([`Config::keep_upload_state`]): the library refuses a state
/// directory under a file, which must not stop a command that never writes one.
///
/// # Errors
/// When the library rejects a setting (a bad certificate directory, ...).
pub fn client(config: &Config) -> anyhow::Result<Client> {
    if let Some(shared) = &config.registry_client {
        return Ok(shared.clone());
    }
    let mut builder = Client::builder()
        .chunk_size(config.chunk_size)
        .concurrency(config.concurrency)
        .timeout(config.timeout)
        .retry(RetryPolicy {
            max_attempts: config.retries.saturating_add(1),
            ..RetryPolicy::default()
        });
    if config.keep_upload_state {
        builder = builder.state_dir(config.cache_dir.join("uploads"));
    }
    for host in &config.insecure_registries {
        builder = builder.insecure_host(host.clone());
    }
    if let Some(dir) = &config.cert_dir {
        // Certificates were given: loopback registries are spoken to over TLS too (a registry
        // on 127.0.0.1 with a test CA), never plain HTTP, which stays for hosts named insecure.
        builder = builder.cert_dir(dir.clone()).plain_http_loopback(false);
    }
    if let Some(path) = &config.auth_file {
        builder = builder.docker_config(path.clone());
    }
    for (registry, path) in &config.registry_auth_files {
        builder = builder.registry_auth_file(registry.clone(), path.clone());
    }
    for registry in &config.anonymous_registries {
        builder = builder.anonymous_registry(registry.clone());
    }
    for (registry, creds) in &config.registry_creds {
        builder = builder.registry_credentials(
            registry.clone(),
            Credentials::new(creds.username.clone(), creds.password.clone()),
        );
    }
    Ok(builder.build()?)
}

/// The tags of the repository `reference` names, in the registry's order (lexical, per the
/// distribution spec), every page followed. A name that is no valid tag is left out with a
/// warning, so a registry cannot put control characters or a path on the user's terminal.
///
/// # Errors
/// When the registry refuses (an unknown repository, no access) or answers garbage.
pub async fn list_tags(config: &Config, reference: &Reference) -> anyhow::Result<Vec<String>> {
    let client = client(config)?;
    let repo = Repo::from_reference(reference)?;
    let shown = format!("{}/{}", reference.registry(), reference.repository());
    let mut tags: Vec<String> = client
        .list_tags(&repo)
        .await
        .with_context(|| format!("listing the tags of {shown}"))?;
    if let Some((left_out, example)) = keep_valid_tags(&mut tags) {
        tracing::warn!(
            "{shown}: the registry listed {left_out} names that are no valid tags (such as {example:?}); left out"
        );
    }
    Ok(tags)
}

/// Delete the manifest `reference` names from its registry, as `skopeo delete` does: a tag is
/// resolved to its digest and that manifest deleted, with every tag on it. Returns the digest.
///
/// # Errors
/// When there is no such image, the registry does not allow deletes or refuses this user, or
/// cannot be reached.
pub async fn delete(config: &Config, reference: &Reference) -> anyhow::Result<Digest> {
    let client = client(config)?;
    let repo = Repo::from_reference(reference)?;
    let name = format!("{}/{}", reference.registry(), reference.repository());
    let shown = match (reference.digest(), reference.tag()) {
        (Some(digest), _) => format!("{name}@{digest}"),
        (None, tag) => format!("{name}:{}", tag.unwrap_or("latest")),
    };
    client
        .delete_manifest(&repo, &reference.tag_or_digest())
        .await
        .with_context(|| format!("deleting {shown}"))
}

/// Leave out of `tags` every name that is no valid tag; how many went, and the first of them
/// made printable, when any did.
fn keep_valid_tags(tags: &mut Vec<String>) -> Option<(usize, String)> {
    let listed = tags.len();
    let example = tags
        .iter()
        .find(|t| !crate::transport::valid_tag(t))
        .map(|t| sanitize(t))?;
    tags.retain(|t| crate::transport::valid_tag(t));
    Some((listed - tags.len(), example))
}

/// A library progress sink whose events reach `reporter`, with `active` as the state of a blob
/// that is moving (pushing or pulling). The forwarding task ends when every sink clone is gone.
pub fn forward(
    reporter: &Reporter,
    active: LayerState,
) -> (hoist_registry::Progress, tokio::task::JoinHandle<()>) {
    let (sink, mut rx) = hoist_registry::Progress::channel(256);
    let reporter = reporter.clone();
    let task = tokio::spawn(async move {
        let mut seen = HashMap::new();
        while let Some(event) = rx.recv().await {
            for e in map_event(&event, active, &mut seen) {
                reporter.send(e);
            }
        }
    });
    (sink, task)
}

/// What [`map_event`] remembers of a blob.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen {
    /// Its size (0 until the library said it).
    size: u64,
    /// Whether the last state said of it is the moving one (`active`).
    active: bool,
    /// Whether this run reported bytes of it.
    moved: bool,
}

/// The CLI events for one library event (pure; `seen` remembers each blob's size and what was
/// said of it). A blob is shown as moving only once bytes move, so one the registry turns out to
/// have goes straight from waiting to skipped; the moving state is said once, and again only
/// after a retry. A resume before this run moved any byte of the blob continues what an earlier
/// run sent ([`Event::Resume`], not moved now); a later one (after a cut) goes back to where
/// the registry's copy ends, and the bytes sent again count again.
pub fn map_event(
    event: &hoist_registry::Event,
    active: LayerState,
    seen: &mut HashMap<String, Seen>,
) -> Vec<Event> {
    use hoist_registry::Event as R;
    let mut out = Vec::new();
    let id = match event {
        R::BlobStarted { digest, .. }
        | R::BytesSent { digest, .. }
        | R::Skipped { digest }
        | R::Mounted { digest, .. }
        | R::Retrying { digest, .. }
        | R::Resumed { digest, .. }
        | R::VerifyingPrefix { digest, .. }
        | R::ChunkShrunk { digest, .. }
        | R::Restarted { digest, .. }
        | R::Stopped { digest, .. }
        | R::Done { digest }
        | R::Failed { digest, .. } => digest.to_string(),
        _ => return out,
    };
    let blob = seen.entry(id.clone()).or_default();
    let state = |state| Event::State {
        id: id.clone(),
        state,
    };
    let ended = match event {
        R::Skipped { .. } => Some(LayerState::Skipped),
        R::Mounted { .. } => Some(LayerState::Mounted),
        R::Done { .. } => Some(LayerState::Done),
        R::Failed { .. } => Some(LayerState::Failed),
        _ => None,
    };
    if let Some(ended) = ended {
        blob.active = false;
        return vec![state(ended)];
    }
    // Stopped on request: where the registry's copy ends, for the next run to continue from.
    if let R::Stopped { offset, .. } = event {
        blob.active = false;
        return vec![
            Event::Progress {
                id: id.clone(),
                done: *offset,
                total: (blob.size > 0).then_some(blob.size),
            },
            state(LayerState::Stopped),
        ];
    }
    match event {
        R::BlobStarted { size, .. } => {
            *blob = Seen {
                size: *size,
                ..Seen::default()
            };
            out.push(Event::Layer {
                id: id.clone(),
                size: Some(*size),
            });
        }
        R::BytesSent { offset, .. } => {
            if !std::mem::replace(&mut blob.active, true) {
                out.push(state(active));
            }
            blob.moved = true;
            out.push(Event::Progress {
                id: id.clone(),
                done: *offset,
                total: (blob.size > 0).then_some(blob.size),
            });
        }
        R::Retrying {
            reason,
            delay,
            attempt,
            ..
        } => {
            blob.active = false;
            out.push(Event::Retry {
                id: id.clone(),
                in_secs: secs_up(*delay),
                reason: sanitize(reason),
                attempt: *attempt,
            });
        }
        R::Resumed { offset, .. } => {
            if !std::mem::replace(&mut blob.active, true) {
                out.push(state(active));
            }
            out.push(match (blob.moved, *offset) {
                (false, done) if done > 0 => Event::Resume {
                    id: id.clone(),
                    done,
                },
                (_, done) => Event::Progress {
                    id: id.clone(),
                    done,
                    total: (blob.size > 0).then_some(blob.size),
                },
            });
        }
        // The upload starts over: a warning, then the blob moves again from byte 0 (what is
        // sent again counts again).
        R::Restarted { lost, reason, .. } => {
            out.push(restarted(short(&id), *lost, reason));
            blob.active = true;
            out.push(state(active));
            out.push(Event::Progress {
                id: id.clone(),
                done: 0,
                total: (blob.size > 0).then_some(blob.size),
            });
        }
        // The line reads "reading" while the prefix is read again, which may take minutes
        // for a large layer and moves no byte to the destination; the first byte sent after
        // it makes the line active again.
        R::VerifyingPrefix { from, offset, .. } => {
            out.push(verifying_prefix(short(&id), *from, *offset));
            blob.active = false;
            out.push(state(LayerState::Reading));
        }
        R::ChunkShrunk { from, to, .. } => out.push(Event::Message {
            text: format!(
                "{}: the registry or a proxy in front of it refused a {} request (413 Request \
                 Entity Too Large) without saying its limit; hoist now sends {} chunks and \
                 continues where the registry stopped (--chunk-size {} starts there)",
                short(&id),
                human(*from),
                human(*to),
                size_arg(*to)
            ),
        }),
        _ => {}
    }
    out
}

/// The warning for the blob `label` names, whose upload starts over: it costs what was sent
/// before, and a silent restart looks like a resume that does not work.
fn restarted(label: &str, lost: u64, reason: &str) -> Event {
    let again = match lost {
        0 => String::new(),
        n => format!(" ({} it had is sent again)", human(n)),
    };
    Event::Message {
        text: format!(
            "{label}: {}; starting the blob over at byte 0{again}",
            sanitize(reason)
        ),
    }
}

/// The note for the blob `label` names, whose streamed upload continues an earlier run's: the
/// bytes that run sent are read from the source again, up to `offset`, to be hashed (from
/// `from`, after a cut), and not sent again (they count as the earlier run's, not as moved).
fn verifying_prefix(label: &str, from: u64, offset: u64) -> Event {
    let what = match from {
        0 => format!("the first {}", human(offset)),
        _ => format!("bytes {} to {}", human(from), human(offset)),
    };
    Event::Message {
        text: format!(
            "{label}: reading {what} of the blob from the source again to verify them; an \
             earlier run sent them, they are not sent again"
        ),
    }
}

/// A library progress sink for the image config, a blob with no line of its own: its retries and
/// shrunk chunks reach `reporter` as messages (a slow or failing config upload never looks
/// hung), its byte counts and states do not.
pub fn forward_config(
    reporter: &Reporter,
) -> (hoist_registry::Progress, tokio::task::JoinHandle<()>) {
    let (sink, mut rx) = hoist_registry::Progress::channel(64);
    let reporter = reporter.clone();
    let task = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            for e in config_event(&event) {
                reporter.send(e);
            }
        }
    });
    (sink, task)
}

/// What of a config blob's progress is shown: see [`forward_config`].
fn config_event(event: &hoist_registry::Event) -> Vec<Event> {
    use hoist_registry::Event as R;
    match event {
        R::Retrying {
            digest,
            reason,
            delay,
            ..
        } => vec![Event::Message {
            text: format!(
                "image config {}: retrying in {}s because {}",
                short(&digest.to_string()),
                secs_up(*delay),
                sanitize(reason)
            ),
        }],
        R::ChunkShrunk { .. } => map_event(event, LayerState::Pushing, &mut HashMap::new()),
        R::Restarted {
            digest,
            lost,
            reason,
        } => {
            let label = format!("image config {}", short(&digest.to_string()));
            vec![restarted(&label, *lost, reason)]
        }
        _ => Vec::new(),
    }
}

/// A size as `--chunk-size` takes it, exactly.
fn size_arg(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{}MiB", bytes >> 20)
    } else if bytes.is_multiple_of(1 << 10) {
        format!("{}KiB", bytes >> 10)
    } else {
        bytes.to_string()
    }
}

fn secs_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn short(id: &str) -> &str {
    crate::progress::tty::short_id(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_oci::Digest;
    use hoist_registry::Event as R;

    /// The events of a resumed streamed push (resume at 2 MB, prefix read again, then 1 MB
    /// sent) applied to the board: only the 1 MB sent by this run counts as moved; the 2 MB
    /// are the earlier run's. The line going `reading` for the prefix used to start its
    /// `pushing` count again from 0, so the first bytes sent after it counted 2.5 MB moved.
    #[test]
    fn a_verified_prefix_is_not_counted_as_moved_on_the_board() {
        use crate::progress::board::Board;
        let d = Digest::sha256_of(b"streamed");
        let mut seen = HashMap::new();
        let t0 = std::time::Instant::now();
        let mut board = Board::new(t0);
        let mut apply = |e: R| {
            for ev in map_event(&e, LayerState::Pushing, &mut seen) {
                board.apply(&ev, t0);
            }
        };
        apply(R::BlobStarted {
            digest: d.clone(),
            size: 3_000_000,
        });
        apply(R::Resumed {
            digest: d.clone(),
            offset: 2_000_000,
        });
        apply(R::VerifyingPrefix {
            digest: d.clone(),
            from: 0,
            offset: 2_000_000,
        });
        apply(R::BytesSent {
            digest: d.clone(),
            offset: 2_500_000,
        });
        apply(R::BytesSent {
            digest: d.clone(),
            offset: 3_000_000,
        });
        apply(R::Done { digest: d });
        assert_eq!(board.resumed(), 2_000_000);
        assert_eq!(
            board.moved(),
            1_000_000,
            "the prefix an earlier run sent counted as moved"
        );
    }

    /// The cache directory is under a file: a push cannot keep its upload state, and its
    /// client is refused; a read-only command never writes any, and its client is built.
    #[tokio::test]
    async fn a_read_only_command_builds_its_client_whatever_the_cache_is() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("file");
        std::fs::write(&file, b"").expect("file");
        let cache = file.join("hoist");
        let cache = cache.to_str().expect("utf-8 path");
        for args in [
            &["inspect", "docker://h.example/a:1"][..],
            &["tags", "h.example/a"],
            &["digest", "h.example/a:1"],
            &["pull", "h.example/a:1", "out"],
        ] {
            let argv: Vec<&str> = ["--cache-dir", cache].iter().chain(args).copied().collect();
            let (config, _) = crate::config::tests::ok(&argv);
            client(&config).unwrap_or_else(|e| panic!("{args:?}: {e:#}"));
        }
        let argv = ["--cache-dir", cache, "push", "oci:x:1", "h.example/a:1"];
        let (config, _) = crate::config::tests::ok(&argv);
        let e = client(&config).expect_err("no place for upload state");
        assert!(format!("{e:#}").contains("is not a directory"), "{e:#}");
    }

    #[test]
    fn a_config_blob_shows_retries_as_messages_and_nothing_else() {
        let d = Digest::sha256_of(b"config");
        let retry = config_event(&R::Retrying {
            digest: d.clone(),
            reason: "503 Service Unavailable\u{1b}[2J".into(),
            delay: Duration::from_millis(200),
            attempt: 2,
        });
        match retry.as_slice() {
            [Event::Message { text }] => {
                assert!(text.starts_with("image config "), "{text}");
                assert!(text.contains("retrying in 1s because 503"), "{text}");
                assert!(!text.contains('\u{1b}'), "{text:?}");
            }
            other => panic!("{other:?}"),
        }
        let sent = config_event(&R::BytesSent {
            digest: d.clone(),
            offset: 10,
        });
        assert!(sent.is_empty(), "no progress line for the config: {sent:?}");
        assert!(config_event(&R::Done { digest: d }).is_empty());
    }

    #[test]
    fn maps_library_events() {
        let d = Digest::sha256_of(b"layer");
        let mut sizes = HashMap::new();
        let started = map_event(
            &R::BlobStarted {
                digest: d.clone(),
                size: 100,
            },
            LayerState::Pushing,
            &mut sizes,
        );
        assert_eq!(started.len(), 1, "not shown as moving before bytes move");
        let sent = map_event(
            &R::BytesSent {
                digest: d.clone(),
                offset: 40,
            },
            LayerState::Pushing,
            &mut sizes,
        );
        assert_eq!(
            sent,
            vec![
                Event::State {
                    id: d.to_string(),
                    state: LayerState::Pushing
                },
                Event::Progress {
                    id: d.to_string(),
                    done: 40,
                    total: Some(100)
                }
            ]
        );
        let more = map_event(
            &R::BytesSent {
                digest: d.clone(),
                offset: 80,
            },
            LayerState::Pushing,
            &mut sizes,
        );
        assert_eq!(more.len(), 1, "the state is announced once");
        let retry = map_event(
            &R::Retrying {
                digest: d.clone(),
                reason: "502 Bad Gateway".into(),
                delay: Duration::from_millis(1500),
                attempt: 3,
            },
            LayerState::Pushing,
            &mut sizes,
        );
        assert!(
            matches!(&retry[0], Event::Retry { in_secs: 2, reason, attempt: 3, .. } if reason == "502 Bad Gateway")
        );
        let shrunk = map_event(
            &R::ChunkShrunk {
                digest: d.clone(),
                from: 64 << 20,
                to: 32 << 20,
            },
            LayerState::Pushing,
            &mut sizes,
        );
        let Event::Message { text } = &shrunk[0] else {
            panic!("a message")
        };
        assert!(text.contains("413"), "{text}");
        assert!(text.contains("67.1 MB"), "{text}");
        assert!(text.contains("33.6 MB chunks"), "{text}");
        assert!(text.contains("--chunk-size 32MiB"), "{text}");
        assert_eq!(size_arg(1536), "1536");
        assert_eq!(size_arg(3 << 10), "3KiB");
    }

    #[test]
    fn a_resumed_upload_says_pushing_once_and_what_an_earlier_run_sent() {
        let d = Digest::sha256_of(b"resumed");
        let id = d.to_string();
        let mut seen = HashMap::new();
        let mut map = |e: R| map_event(&e, LayerState::Pushing, &mut seen);
        map(R::BlobStarted {
            digest: d.clone(),
            size: 100,
        });
        // An earlier run's upload continues at 60: those bytes are not this run's.
        let resumed = map(R::Resumed {
            digest: d.clone(),
            offset: 60,
        });
        let pushing = Event::State {
            id: id.clone(),
            state: LayerState::Pushing,
        };
        let resume = Event::Resume {
            id: id.clone(),
            done: 60,
        };
        assert_eq!(resumed, vec![pushing.clone(), resume]);
        let sent = map(R::BytesSent {
            digest: d.clone(),
            offset: 80,
        });
        assert!(
            matches!(sent.as_slice(), [Event::Progress { .. }]),
            "{sent:?}"
        );
        // A cut in this run: a retry, then back to the registry's offset; moving again.
        map(R::Retrying {
            digest: d.clone(),
            reason: "reset".into(),
            delay: Duration::ZERO,
            attempt: 2,
        });
        let again = map(R::Resumed {
            digest: d.clone(),
            offset: 70,
        });
        let progress = Event::Progress {
            id,
            done: 70,
            total: Some(100),
        };
        assert_eq!(again, vec![pushing, progress]);
    }

    #[test]
    fn a_verified_prefix_is_said_and_not_counted_as_moved() {
        let d = Digest::sha256_of(b"streamed");
        let mut seen = HashMap::new();
        let mut map = |e: R| map_event(&e, LayerState::Pushing, &mut seen);
        map(R::BlobStarted {
            digest: d.clone(),
            size: 3_000_000,
        });
        map(R::Resumed {
            digest: d.clone(),
            offset: 2_000_000,
        });
        let said = map(R::VerifyingPrefix {
            digest: d.clone(),
            from: 0,
            offset: 2_000_000,
        });
        let [
            Event::Message { text },
            Event::State {
                state: LayerState::Reading,
                ..
            },
        ] = said.as_slice()
        else {
            panic!("a message, then the line reads: {said:?}")
        };
        assert!(text.contains("first 2.00 MB"), "{text}");
        assert!(text.contains("not sent again"), "{text}");
        // After a cut in that read it goes on from where the hash stands.
        let again = map(R::VerifyingPrefix {
            digest: d.clone(),
            from: 500_000,
            offset: 2_000_000,
        });
        let [Event::Message { text }, Event::State { .. }] = again.as_slice() else {
            panic!("a message and a state: {again:?}")
        };
        assert!(text.contains("bytes 500 KB to 2.00 MB"), "{text}");
        // The first byte sent after the prefix makes the line push again.
        let sent = map(R::BytesSent {
            digest: d,
            offset: 2_100_000,
        });
        assert!(
            matches!(
                sent.first(),
                Some(Event::State {
                    state: LayerState::Pushing,
                    ..
                })
            ),
            "{sent:?}"
        );
    }

    #[test]
    fn a_restart_is_a_warning_and_a_stop_says_where_it_stands() {
        let d = Digest::sha256_of(b"layer");
        let mut seen = HashMap::new();
        let _ = map_event(
            &R::BlobStarted {
                digest: d.clone(),
                size: 8_000_000,
            },
            LayerState::Pushing,
            &mut seen,
        );
        let restarted = map_event(
            &R::Restarted {
                digest: d.clone(),
                lost: 3 << 20,
                reason: "the registry no longer knows the upload\u{1b}[2J".into(),
            },
            LayerState::Pushing,
            &mut seen,
        );
        let Event::Message { text } = &restarted[0] else {
            panic!("a message first: {restarted:?}")
        };
        assert_eq!(
            text,
            &format!(
                "{}: the registry no longer knows the upload[2J; starting the blob over at \
                 byte 0 (3.15 MB it had is sent again)",
                short(&d.to_string())
            )
        );
        assert!(matches!(&restarted[2], Event::Progress { done: 0, .. }));
        let config = config_event(&R::Restarted {
            digest: d.clone(),
            lost: 0,
            reason: "the registry lost the upload session".into(),
        });
        assert!(
            matches!(&config[..], [Event::Message { text }] if text.starts_with("image config ")
                && text.ends_with("starting the blob over at byte 0")),
            "{config:?}"
        );
        let stopped = map_event(
            &R::Stopped {
                digest: d.clone(),
                offset: 2 << 20,
            },
            LayerState::Pushing,
            &mut seen,
        );
        assert_eq!(
            stopped,
            vec![
                Event::Progress {
                    id: d.to_string(),
                    done: 2 << 20,
                    total: Some(8_000_000)
                },
                Event::State {
                    id: d.to_string(),
                    state: LayerState::Stopped
                }
            ]
        );
    }

    #[test]
    fn names_that_are_no_tags_are_left_out_and_shown_printable() {
        let mut tags: Vec<String> = ["v1", "\u{1b}[2Jgone", "../x", "latest", ""]
            .map(String::from)
            .to_vec();
        let (left_out, example) = keep_valid_tags(&mut tags).expect("some left out");
        assert_eq!(tags, ["v1", "latest"]);
        assert_eq!(left_out, 3);
        assert!(!example.contains('\u{1b}'), "{example:?}");
        let mut fine = vec!["a".to_string(), "b_1.2-x".to_string()];
        assert_eq!(keep_valid_tags(&mut fine), None);
        assert_eq!(fine.len(), 2);
    }
}

//! Picking up the session an earlier process left, named by its state file: the session is
//! asked where it stands and the upload continues there. When that cannot be (the registry
//! no longer knows the session, answers garbage, or the file names another host) the state
//! file goes and the blob starts over in a new session. That costs every byte sent before,
//! so the caller hears of it ([`Event::Restarted`], and a warning in the log), not only the
//! debug log: with distribution 2.8 it is what a push killed mid-chunk leads to.

use std::path::Path;

use url::Url;

use super::{PushOutcome, Src};
use crate::client::Client;
use crate::progress::{BlobProgress, Event};
use crate::protocol::chunk::ChunkLimits;
use crate::session::{Session, Status};
use crate::{Repo, state};

impl Client {
    /// The session `state_file` names, continued where the registry stands; `None` (the
    /// file removed, the restart reported) when there is no file or its session cannot go on.
    pub(super) async fn resume_left(
        &self,
        repo: &Repo,
        src: &Src,
        scopes: &[String],
        state_file: &Path,
        bp: &mut BlobProgress<'_>,
        out: &mut PushOutcome,
    ) -> Option<Session> {
        let st = state::load(state_file, repo.registry(), repo.name(), &src.digest).await?;
        let ours = self.url(repo.registry(), "").ok();
        let why = match Url::parse(&st.location) {
            Ok(loc) if loc.host_str() == ours.as_ref().and_then(Url::host_str) => {
                match self
                    .session_status(repo, scopes, &loc, st.offset, true)
                    .await
                {
                    Ok(Status::Alive { location, offset }) if offset <= src.size => {
                        tracing::info!(digest = %src.digest, offset, "resuming upload left by an earlier run");
                        bp.emit(Event::Resumed {
                            digest: src.digest.clone(),
                            offset,
                        })
                        .await;
                        bp.at(offset);
                        out.resumes += 1;
                        return Some(Session {
                            location,
                            offset,
                            limits: ChunkLimits::default(),
                        });
                    }
                    Ok(Status::Alive { offset, .. }) => format!(
                        "the registry claims {offset} bytes of this {}-byte blob in the upload \
                         an earlier run left",
                        src.size
                    ),
                    Ok(Status::Gone) => {
                        "the registry no longer knows the upload an earlier run left".to_string()
                    }
                    Err(e) => format!("asking about the upload an earlier run left failed ({e})"),
                }
            }
            _ => "the upload state an earlier run left names another registry host".to_string(),
        };
        state::remove(state_file).await;
        tracing::warn!(digest = %src.digest, lost = st.offset, "{why}; starting the blob over at byte 0");
        bp.emit(Event::Restarted {
            digest: src.digest.clone(),
            lost: st.offset,
            reason: why,
        })
        .await;
        None
    }
}

//! A writer's claim on a layout: whether it created it, and a mark that it is at work there,
//! so that a writer that fails removes a layout only when it made it and nobody else uses it.
//!
//! Two processes writing into the same new directory must not delete each other's work: the
//! one that fails may have created the layout, but the other may have finished an image in it
//! or be writing one. The mark is a locked temp file in `blobs/`, the layout's own sign of a
//! live writer (which [`Layout::open`] never removes), placed under the layout's lock on
//! `oci-layout`; [`Claim::release_failed`] looks for other such files and for index entries
//! under the same lock before removing anything.
//!
//! What it does not see: a writer that opened the layout without claiming it and has no temp
//! file of its own in `blobs/` at that moment (between two blobs, before its first, or one
//! that downloads into `blobs/<algorithm>/` as other tools do). Every writer in hoist claims.

use std::fs::{self, File};
use std::path::Path;

use super::blob::{TEMP_PREFIX, live_temp, lock_if_stale};
use super::{LAYOUT_FILE, Layout};
use crate::{Error, ErrorKind, Result};

/// How many times a claim starts over when the layout it opened is removed before it is
/// marked (its creator failed in between).
const CLAIM_ATTEMPTS: usize = 3;

/// A claim on the layout in a directory, marked in use until it is dropped or released.
///
/// Made by [`Layout::claim`]. Dropping a claim only removes its mark (the layout stays, as it
/// should after a success); after a failure, [`Claim::release_failed`] also removes the
/// layout when this claim created it and no one else is using it.
#[derive(Debug)]
#[must_use = "dropping a claim at once unmarks the layout"]
pub struct Claim {
    layout: Layout,
    created: bool,
    /// The in-use mark: a locked temp file in `blobs/`, deleted when dropped.
    mark: tempfile::NamedTempFile,
}

impl Layout {
    /// Open the layout in `dir`, creating it (and `dir`) when there is none, and mark it in use
    /// by this writer until the returned [`Claim`] is dropped or released.
    ///
    /// The claim says it [created](Claim::created) the layout only when this call's
    /// [`Layout::create`] won and `dir` did not exist before: two claimers of a new directory
    /// never both think they made it, and a directory the user made is never removed. A layout
    /// removed between being opened and being marked is opened or created again.
    ///
    /// Blocking: it may wait for the layout's lock.
    ///
    /// # Errors
    /// As [`Layout::open`] and [`Layout::create`]; [`ErrorKind::Io`] when locking or marking
    /// fails, or when the layout keeps being removed while it is claimed.
    pub fn claim(dir: impl AsRef<Path>) -> Result<Claim> {
        let dir = dir.as_ref();
        let dir_existed = dir.exists();
        for _ in 0..CLAIM_ATTEMPTS {
            let (layout, created) = match Layout::open(dir) {
                Ok(layout) => (layout, false),
                Err(e) if e.is_not_found() => match Layout::create(dir) {
                    Ok(layout) => (layout, !dir_existed),
                    // Another writer created it in between.
                    Err(e) if e.is_invalid_input() => match Layout::open(dir) {
                        Ok(layout) => (layout, false),
                        // ... and has removed it again already.
                        Err(e) if e.is_not_found() => continue,
                        Err(e) => return Err(e),
                    },
                    Err(e) => return Err(e),
                },
                Err(e) => return Err(e),
            };
            let lock = match layout.lock() {
                Ok(lock) => lock,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            // Removal happens under this lock: a layout still in place now stays until the
            // mark is seen.
            if !layout.still_locked_by(&lock) {
                continue;
            }
            let blobs = layout.blobs_dir();
            fs::create_dir_all(&blobs)
                .map_err(|e| Error::io("creating blobs directory", e).with_path(&blobs))?;
            let mark = live_temp(&blobs)?;
            drop(lock);
            return Ok(Claim {
                layout,
                created,
                mark,
            });
        }
        Err(Error::new(
            ErrorKind::Io,
            "the layout was removed again and again while it was being claimed",
        )
        .with_path(dir))
    }

    /// Whether `lock` (from [`Layout::lock`]) is on this layout's `oci-layout` as it is now: not
    /// removed, and not replaced by a new layout's, since it was opened.
    fn still_locked_by(&self, lock: &File) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (lock.metadata(), fs::metadata(self.root.join(LAYOUT_FILE))) {
            (Ok(held), Ok(now)) => held.dev() == now.dev() && held.ino() == now.ino(),
            _ => false,
        }
    }

    /// Whether anyone else may be using the layout: a temp file in `blobs/` that may be a live
    /// writer's (anything there but directories and stale temp files), or an entry in the
    /// index. Called under the layout's lock, after this writer dropped its own mark.
    fn in_use_by_others(&self) -> Result<bool> {
        let blobs = self.blobs_dir();
        let entries = match fs::read_dir(&blobs) {
            Ok(entries) => entries.collect::<Vec<_>>(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io("listing blobs", e).with_path(&blobs)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("listing blobs", e).with_path(&blobs))?;
            // Blobs live in `blobs/<algorithm>/`.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let temp = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX);
            if !temp || lock_if_stale(&entry).is_none() {
                return Ok(true);
            }
        }
        Ok(self
            .index()
            .map_or(true, |index| !index.value().manifests.is_empty()))
    }
}

impl Claim {
    /// The claimed layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Whether this claim created the layout, and the directory it is in.
    pub fn created(&self) -> bool {
        self.created
    }

    /// After this writer failed: drop the mark, then, when this claim created the layout,
    /// remove it (its whole directory) unless someone else is using it: another writer's live
    /// temp file in `blobs/` (another claim's mark, a blob being written, or one that cannot
    /// be told from those) or anything listed in `index.json` (an unreadable index counts as
    /// listing something). Checked and removed under the layout's lock. Returns whether the
    /// layout was removed; one this claim did not create never is.
    ///
    /// Blocking: it waits for the layout's lock.
    ///
    /// # Errors
    /// Locking the layout, listing `blobs/` or removing the directory failed (the layout may
    /// then be partly removed).
    pub fn release_failed(self) -> Result<bool> {
        let Claim {
            layout,
            created,
            mark,
        } = self;
        drop(mark);
        if !created {
            return Ok(false);
        }
        let lock = match layout.lock() {
            Ok(lock) => lock,
            // Removed already (by hand: no other claim removes a layout it did not create).
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e),
        };
        if !layout.still_locked_by(&lock) || layout.in_use_by_others()? {
            return Ok(false);
        }
        fs::remove_dir_all(&layout.root)
            .map_err(|e| Error::io("removing the layout", e).with_path(&layout.root))?;
        Ok(true)
    }
}

//! What the host does behind the bench's back that moves its numbers, said in the report.
//!
//! On the machine of runs 12 and 13 the kernel's DAMON was paging out memory that had not
//! been touched for a while (a `pageout` scheme on physical addresses: 126 GB in two hours).
//! Page cache is memory too: an input or a registry's storage left alone for a minute can be
//! gone by the next run, which then reads it from disk. Such runs cost more wall time and
//! CPU, for whichever tool meets them. The bench does not switch the daemon off (it belongs
//! to whoever runs the machine); it says so in the report.

use std::path::Path;

/// DAMON's sysfs interface.
pub const DAMON_SYSFS: &str = "/sys/kernel/mm/damon/admin/kdamonds";

/// Ask each kdamond under `root` to refresh its schemes' stats files (they are not kept
/// current otherwise). Failures (no DAMON, no root) leave the stats as they were.
pub fn refresh_damon_stats(root: &Path) {
    for kdamond in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let _ = std::fs::write(kdamond.path().join("state"), "update_schemes_stats");
    }
}

/// A sentence for the report when a running kdamond has a `pageout` scheme under `root`
/// (normally [`DAMON_SYSFS`]), with what it has paged out when the kernel says.
pub fn proactive_reclaim(root: &Path) -> Option<String> {
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let mut found = Vec::new();
    let mut kdamonds: Vec<_> = std::fs::read_dir(root).ok()?.flatten().collect();
    kdamonds.sort_by_key(std::fs::DirEntry::file_name);
    for kdamond in kdamonds {
        let dir = kdamond.path();
        if read(&dir.join("state")).as_deref() != Some("on") {
            continue;
        }
        let Ok(contexts) = std::fs::read_dir(dir.join("contexts")) else {
            continue;
        };
        for context in contexts.flatten() {
            let Ok(schemes) = std::fs::read_dir(context.path().join("schemes")) else {
                continue;
            };
            for scheme in schemes.flatten() {
                let scheme = scheme.path();
                if read(&scheme.join("action")).as_deref() != Some("pageout") {
                    continue;
                }
                let applied = read(&scheme.join("stats/sz_applied"))
                    .and_then(|s| s.parse::<u64>().ok())
                    .filter(|&b| b > 0);
                found.push(applied);
            }
        }
    }
    if found.is_empty() {
        return None;
    }
    let paged: u64 = found.iter().flatten().sum();
    let so_far = match paged {
        0 => String::new(),
        b => format!(" ({:.0} GB paged out so far)", b as f64 / 1e9),
    };
    Some(format!(
        "the kernel's DAMON pages out memory left untouched for a while{so_far}, page cache \
         included: an input or a registry's storage may be read back from disk in some runs, \
         for any tool; compare ratios, and distrust single CPU figures"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn a_running_pageout_scheme_is_reported_with_what_it_paged_out() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        assert_eq!(proactive_reclaim(&root.join("missing")), None);
        // A stopped daemon with a pageout scheme, and a running one that only collects stats.
        write(&root.join("0/state"), "off\n");
        write(&root.join("0/contexts/0/schemes/0/action"), "pageout\n");
        write(&root.join("1/state"), "on\n");
        write(&root.join("1/contexts/0/schemes/0/action"), "stat\n");
        assert_eq!(proactive_reclaim(root), None);
        write(&root.join("1/contexts/0/schemes/1/action"), "pageout\n");
        let said = proactive_reclaim(root).expect("reported");
        assert!(said.contains("DAMON pages out"), "{said}");
        assert!(
            !said.contains("paged out so far"),
            "no stats, no figure: {said}"
        );
        write(
            &root.join("1/contexts/0/schemes/1/stats/sz_applied"),
            "126133616640\n",
        );
        let said = proactive_reclaim(root).expect("reported");
        assert!(said.contains("(126 GB paged out so far)"), "{said}");
    }
}

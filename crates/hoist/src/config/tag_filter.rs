//! `--include-tags` and `--exclude-tags`: which tags `copy --all-tags` copies, by regular
//! expressions each matching a whole tag (as skopeo sync's `images-by-tag-regex` and
//! regsync's allow and deny lists do), so `v1` does not also take `v10-rc`.

use regex::Regex;

use super::{UsageError, usage};

/// The tags to copy: those `include` matches (every tag without it), less those `exclude`
/// matches.
#[derive(Debug, Clone, Default)]
pub struct TagFilter {
    include: Option<Regex>,
    exclude: Option<Regex>,
}

impl TagFilter {
    /// The filter the two options ask for.
    ///
    /// # Errors
    /// A usage error naming the option whose expression does not compile.
    pub fn new(include: Option<&str>, exclude: Option<&str>) -> Result<TagFilter, UsageError> {
        Ok(TagFilter {
            include: include.map(|p| whole("--include-tags", p)).transpose()?,
            exclude: exclude.map(|p| whole("--exclude-tags", p)).transpose()?,
        })
    }

    /// Whether `tag` is copied.
    pub fn keeps(&self, tag: &str) -> bool {
        self.include.as_ref().is_none_or(|r| r.is_match(tag))
            && !self.exclude.as_ref().is_some_and(|r| r.is_match(tag))
    }

    /// Whether any tag can be left out (an option was given).
    pub fn filters(&self) -> bool {
        self.include.is_some() || self.exclude.is_some()
    }

    /// The options as given, for messages: `--include-tags 'v.*' --exclude-tags '.*-rc'`.
    pub fn describe(&self) -> String {
        let given = [
            ("--include-tags", &self.include),
            ("--exclude-tags", &self.exclude),
        ];
        given
            .iter()
            .filter_map(|(name, r)| r.as_ref().map(|r| format!("{name} '{}'", unanchored(r))))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Two filters are the same when they were given the same expressions.
impl PartialEq for TagFilter {
    fn eq(&self, other: &TagFilter) -> bool {
        let text = |r: &Option<Regex>| r.as_ref().map(|r| r.as_str().to_owned());
        text(&self.include) == text(&other.include) && text(&self.exclude) == text(&other.exclude)
    }
}

impl Eq for TagFilter {}

/// The expression as given, without the anchors [`whole`] added.
fn unanchored(r: &Regex) -> &str {
    r.as_str()
        .strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(r.as_str())
}

/// `pattern` compiled to match a whole tag, never a part of one.
fn whole(option: &str, pattern: &str) -> Result<Regex, UsageError> {
    // Tags are at most 128 characters; a pattern far longer than that is a mistake, and the
    // size limit keeps a pathological one from compiling into something huge.
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            usage(format!(
                "{option} '{pattern}' is no regular expression: {e}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(filter: &TagFilter, tags: &[&str]) -> Vec<String> {
        tags.iter()
            .filter(|t| filter.keeps(t))
            .map(|t| (*t).to_owned())
            .collect()
    }

    const TAGS: [&str; 7] = ["1.0", "1.1", "1.10-rc1", "2.0", "latest", "v1", "x1.0"];

    #[test]
    fn no_option_keeps_every_tag() {
        let filter = TagFilter::new(None, None).expect("filter");
        assert!(!filter.filters());
        assert_eq!(kept(&filter, &TAGS), TAGS);
    }

    #[test]
    fn an_expression_matches_whole_tags_only() {
        let filter = TagFilter::new(Some(r"1\.[0-9]+"), None).expect("filter");
        // Not `1.10-rc1` (a prefix matches) nor `x1.0` (a suffix matches).
        assert_eq!(kept(&filter, &TAGS), ["1.0", "1.1"]);
        // Alternatives stay inside the anchors: `1.0|2.0` is not `^1.0` or `2.0$`.
        let filter = TagFilter::new(Some(r"1\.0|2\.0"), None).expect("filter");
        assert_eq!(kept(&filter, &TAGS), ["1.0", "2.0"]);
    }

    #[test]
    fn exclude_applies_after_include() {
        let filter = TagFilter::new(Some(r"[0-9].*"), Some(".*-rc[0-9]*")).expect("filter");
        assert_eq!(kept(&filter, &TAGS), ["1.0", "1.1", "2.0"]);
        let filter = TagFilter::new(None, Some("latest")).expect("filter");
        assert_eq!(kept(&filter, &TAGS).len(), TAGS.len() - 1);
        assert_eq!(
            filter.describe(),
            "--exclude-tags 'latest'",
            "said as it was given"
        );
    }

    #[test]
    fn a_bad_expression_is_a_usage_error_naming_the_option() {
        let e = TagFilter::new(None, Some("v(1")).expect_err("unclosed group");
        assert!(e.to_string().contains("--exclude-tags 'v(1'"), "{e}");
        let e = TagFilter::new(Some("a{99999}{99999}"), None).expect_err("too big");
        assert!(e.to_string().contains("--include-tags"), "{e}");
    }

    #[test]
    fn filters_are_equal_when_given_the_same_expressions() {
        let a = TagFilter::new(Some("v.*"), None).expect("filter");
        assert_eq!(a, TagFilter::new(Some("v.*"), None).expect("filter"));
        assert_ne!(a, TagFilter::new(None, Some("v.*")).expect("filter"));
    }
}

//! `hoist-docker`: see the crate README. (Skeleton: the implementation lands with its issue.)

#![deny(missing_docs)]

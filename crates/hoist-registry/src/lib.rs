//! `hoist-registry`: an HTTP/1.1 OCI distribution client with chunked, resumable uploads.

#![deny(missing_docs)]

mod error;
pub mod protocol;
mod retry;
mod secret;

pub use error::{Error, ErrorKind, Result};
pub use retry::RetryPolicy;
pub use secret::Secret;
mod body;
mod client;
mod credentials;

pub use client::{Client, ClientBuilder, Repo};
pub use credentials::Credentials;
mod progress;
mod state;
mod upload;

pub use progress::{Event, Progress};
pub use upload::{BlobSource, PushKind, PushOptions, PushOutcome};
mod manifest;

pub use manifest::MANIFEST_ACCEPT;
mod pull;

pub use pull::BlobStream;

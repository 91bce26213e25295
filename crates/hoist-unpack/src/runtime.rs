//! The image's runtime metadata (entrypoint, cmd, env, ...) as a small JSON file for sandbox
//! and VM builders that boot the unpacked root filesystem.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use hoist_oci::ImageConfig;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// What a runtime needs to start the image's process, taken from the image config.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeMetadata {
    /// Entrypoint (empty when the image has none).
    pub entrypoint: Vec<String>,
    /// Default arguments.
    pub cmd: Vec<String>,
    /// Environment, `KEY=value`.
    pub env: Vec<String>,
    /// Working directory (empty means `/`).
    pub working_dir: String,
    /// User (and group), as written in the image (`uid`, `uid:gid`, `name`).
    pub user: String,
    /// Exposed ports such as `80/tcp`, sorted.
    pub exposed_ports: Vec<String>,
}

impl RuntimeMetadata {
    /// Extract the runtime metadata of an image config.
    pub fn from_config(config: &ImageConfig) -> Self {
        let Some(rc) = config.config.as_ref() else {
            return RuntimeMetadata::default();
        };
        RuntimeMetadata {
            entrypoint: rc.entrypoint.clone().unwrap_or_default(),
            cmd: rc.cmd.clone().unwrap_or_default(),
            env: rc.env.clone().unwrap_or_default(),
            working_dir: rc.working_dir.clone().unwrap_or_default(),
            user: rc.user.clone().unwrap_or_default(),
            exposed_ports: rc
                .exposed_ports
                .as_ref()
                .map(|p: &BTreeMap<String, serde_json::Value>| p.keys().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

/// Write the runtime metadata of `config` as pretty JSON to `path` (a host path chosen by the
/// caller, typically next to the rootfs). Written to a temporary name and renamed into place.
pub fn write_runtime_config(config: &ImageConfig, path: &Path) -> Result<()> {
    let meta = RuntimeMetadata::from_config(config);
    let mut json = serde_json::to_vec_pretty(&meta).map_err(|e| {
        Error::new(ErrorKind::InvalidInput, "encoding runtime metadata").with_source(e)
    })?;
    json.push(b'\n');
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Readable as the umask allows, like the root filesystem next to it (not 0600).
    let mut tmp = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| Error::io(format!("creating a file in {}", dir.display()), e))?;
    tmp.write_all(&json)
        .map_err(|e| Error::io("writing runtime metadata", e))?;
    tmp.persist(path)
        .map_err(|e| Error::io(format!("renaming into {}", path.display()), e.error))?;
    Ok(())
}

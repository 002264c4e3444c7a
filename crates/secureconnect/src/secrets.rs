//! Secrets the server needs: taken from configuration, else read from (or generated into) the
//! data directory with mode 0600, so an embedded install needs no setup.

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use std::path::Path;

/// Creates the data directory (0700) if needed.
pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
    set_mode(dir, 0o700)
}

#[cfg(unix)]
pub(crate) fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set permissions on {}", path.display()))
}

#[cfg(not(unix))]
pub(crate) fn set_mode(_: &Path, _: u32) -> anyhow::Result<()> {
    Ok(())
}

/// 32 random bytes kept base64-encoded in `dir/name`, created on first use.
pub fn load_or_generate(dir: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    let text = load_or_create_text(dir, name, || {
        let mut bytes = vec![0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        STANDARD.encode(&bytes)
    })?;
    let bytes = STANDARD
        .decode(text.trim())
        .with_context(|| format!("{name} in the data directory is not base64"))?;
    if bytes.len() != 32 {
        bail!("{name} in the data directory must hold 32 bytes");
    }
    Ok(bytes)
}

/// A secret kept as text in `dir/name` (mode 0600), made by `generate` on first use.
pub fn load_or_create_text(
    dir: &Path,
    name: &str,
    generate: impl FnOnce() -> String,
) -> anyhow::Result<String> {
    let path = dir.join(name);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {name} in the data directory"))?;
        return Ok(text.trim().to_string());
    }
    ensure_data_dir(dir)?;
    let text = generate();
    // Written to a temporary file with 0600 first, then renamed: never readable by others.
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("cannot write {name} in the data directory"))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    set_mode(&path, 0o600)?;
    // The name only: where credentials live is not for the logs.
    tracing::info!(secret = name, "generated secret");
    Ok(text)
}

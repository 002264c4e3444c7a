//! File-system steps shared by backup and restore: private directories and files, streamed
//! copies that hash on the way, emptiness checks, durable renames.

use crate::secrets::set_mode;
use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::{
    fs, io,
    io::{Read, Write},
    path::{Path, PathBuf},
};

/// Bytes read at once while copying or hashing: a blob is never held whole in memory.
const CHUNK: usize = 256 * 1024;

/// What a copy or a hash pass saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest256 {
    pub bytes: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// Fails unless `dir` is absent or an empty directory; the error ends with `hint`.
pub fn ensure_empty_or_absent(dir: &Path, what: &str, hint: &str) -> anyhow::Result<()> {
    let mut entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {what} {}", dir.display()));
        }
    };
    if entries.next().is_some() {
        bail!("{what} {} is not empty: {hint}", dir.display());
    }
    Ok(())
}

/// Creates `dir` and its missing parents; `dir` itself gets mode 0700.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    make_private_dir(dir, true)
}

/// Creates the directory `dir`, which must not exist, with mode 0700.
pub fn create_new_private_dir(dir: &Path) -> anyhow::Result<()> {
    make_private_dir(dir, false)
}

fn make_private_dir(dir: &Path, with_parents: bool) -> anyhow::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(with_parents);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    set_mode(dir, 0o700)
}

/// A new file (it must not exist) readable by its owner only.
fn create_private_file(path: &Path) -> io::Result<fs::File> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
}

/// Streams `src` into the new file `dst` (mode 0600, fsynced), hashing on the way. `None` when
/// `src` does not exist.
pub fn copy_hashed(src: &Path, dst: &Path) -> anyhow::Result<Option<Digest256>> {
    let mut input = match fs::File::open(src) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", src.display())),
    };
    let mut copy = || -> io::Result<Digest256> {
        let mut output = create_private_file(dst)?;
        let digest = pump(&mut input, Some(&mut output))?;
        output.sync_all()?;
        Ok(digest)
    };
    copy()
        .map(Some)
        .with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))
}

/// The size and SHA-256 of `path`, read in chunks.
pub fn hash_file(path: &Path) -> anyhow::Result<Digest256> {
    let mut input =
        fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    pump(&mut input, None).with_context(|| format!("cannot read {}", path.display()))
}

fn pump(input: &mut fs::File, mut output: Option<&mut fs::File>) -> io::Result<Digest256> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        if let Some(out) = output.as_deref_mut() {
            out.write_all(&buf[..n])?;
        }
        bytes += n as u64;
    }
    Ok(Digest256 {
        bytes,
        sha256: hex(&hasher.finalize()),
    })
}

/// Writes `bytes` to the new file `path` (mode 0600, fsynced).
pub fn write_private_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let write = || -> io::Result<()> {
        let mut f = create_private_file(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

/// Makes a file fsynced and readable by its owner only (a file SQLite created).
pub fn seal_file(path: &Path) -> anyhow::Result<()> {
    set_mode(path, 0o600)?;
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", path.display()))
}

/// Makes the entries of `dir` durable (renames, new files). Best effort where directories
/// cannot be opened.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Renames `from` to `to` and makes the new name durable.
pub fn rename_durably(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::rename(from, to)
        .with_context(|| format!("cannot rename {} to {}", from.display(), to.display()))?;
    if let Some(parent) = to.parent() {
        sync_dir(parent);
    }
    Ok(())
}

/// The sibling of `dir` named like it plus `suffix` (`/srv/backup` → `/srv/backup.partial`).
pub fn sibling_with_suffix(dir: &Path, suffix: &str) -> anyhow::Result<PathBuf> {
    let name = dir
        .file_name()
        .with_context(|| format!("{} does not name a directory", dir.display()))?;
    let mut name = name.to_os_string();
    name.push(suffix);
    Ok(dir.with_file_name(name))
}

/// Runs blocking file work (copies, hashes) off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .context("a file task of the backup failed")?
}

/// A warning for the operator (the command's output, not a log).
pub fn warn(message: impl std::fmt::Display) {
    eprintln!("warning: {message}");
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

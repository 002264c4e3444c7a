//! The blob store port: where the bytes of drive files live. Clients never send file bytes
//! through a JSON route; they PUT and GET short-lived signed URLs. Two adapters, one enum with
//! the same methods: the local disk under `data/blobs`, whose URLs the server signs and serves
//! itself (`/v1/blobs/{key}`), and an S3-compatible bucket with presigned URLs ([`S3Blobs`],
//! selected by `s3_endpoint`), whose bytes never pass through the server.
//!
//! Local layout: `root/objects/<2 hex>/<32 hex>`, written as `.tmp-<uuid>` in the same directory,
//! fsynced, then linked into place without ever replacing an existing object (an object is
//! immutable once written: a signed PUT URL cannot be replayed to swap the bytes of a file whose
//! type was already checked).

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use hmac::{Hmac, Mac};
use sc_core::{AppError, AppResult, time::Timestamp};
use sha2::{Digest, Sha256};
use std::{
    collections::BTreeMap,
    fmt,
    io::{self, Read},
    path::{Path, PathBuf},
    pin::Pin,
    time::Duration,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::DepState;

mod s3;
pub use s3::{MAX_PRESIGN_SECONDS, S3Blobs, S3Settings};

type HmacSha256 = Hmac<Sha256>;

/// Chunk size of reads and of the write buffer: large enough that disk throughput is not lost
/// to per-call overhead, small enough that a thousand transfers stay in a few hundred MiB.
const IO_CHUNK: usize = 256 * 1024;
/// Writes and reads of whole objects go through a blocking task in chunks this large, with at
/// most `WRITE_QUEUE` / `READ_QUEUE` of them waiting: a transfer holds a few MiB, whatever
/// its size.
const WRITE_BUFFER: usize = 1024 * 1024;
const WRITE_QUEUE: usize = 16;
const READ_CHUNK: usize = 1024 * 1024;
const READ_QUEUE: usize = 4;
/// How far ahead of a download's reads the kernel is asked to read (a sequential read alone
/// keeps a virtual disk about half as busy).
const READ_AHEAD: u64 = 4 * 1024 * 1024;
/// Uploads at least twice this large are written back to disk in steps of it while they
/// arrive, so the final fsync waits for the last step only, not for the whole file.
const WRITEBACK_STEP: u64 = 32 * 1024 * 1024;
/// Prefix of the temporary files of writes in progress.
const TEMP_PREFIX: &str = ".tmp-";

/// The key that signs blob URLs, derived from the data key so that no other secret file is
/// needed: HMAC-SHA256(data_key, "blob-url-signing").
pub fn derive_url_signing_key(data_key: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length: this cannot fail.
    let mut mac = HmacSha256::new_from_slice(data_key).unwrap_or_else(|_| unreachable!());
    mac.update(b"blob-url-signing");
    mac.finalize().into_bytes().into()
}

/// The name of an object: `objects/<2 hex>/<uuid v4, 32 lowercase hex>`, the two hex digits being
/// the uuid's first two (so that no directory holds more than 1/256 of the objects).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(String);

impl BlobKey {
    pub fn new_random() -> Self {
        let id = Uuid::new_v4().simple().to_string();
        Self(format!("objects/{}/{id}", &id[..2]))
    }

    /// Accepts exactly the shape `new_random` produces, nothing else (no `..`, no other folder).
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix("objects/")?;
        let (shard, id) = rest.split_once('/')?;
        let hex = |t: &str| t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let ok = shard.len() == 2
            && id.len() == 32
            && hex(shard)
            && hex(id)
            && id.starts_with(shard)
            && Uuid::try_parse(id).is_ok_and(|u| u.get_version_num() == 4);
        ok.then(|| Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where and how a client sends the bytes of an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadTarget {
    pub url: String,
    pub method: &'static str,
    /// Headers the client must send with the request (`Content-Type`; S3 signs more).
    pub headers: BTreeMap<String, String>,
    pub expires_at: Timestamp,
}

/// What one look at a stored object tells: its size, its first bytes (for the type check) and,
/// when the store vouches for it, the SHA-256 of all its bytes (lowercase hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobProbe {
    pub size: u64,
    pub head: Vec<u8>,
    pub sha256: Option<String>,
}

/// Bytes of an object as a stream of chunks (a file on disk; later an S3 response body).
pub type BlobBody = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// An object opened for reading, whole or one byte range of it.
pub struct BlobRead {
    pub body: BlobBody,
    /// First byte sent.
    pub start: u64,
    /// Bytes sent.
    pub len: u64,
    /// Size of the whole object.
    pub total: u64,
    /// A range was asked for and is being served (206 with `Content-Range`).
    pub partial: bool,
}

impl BlobRead {
    /// The last byte sent (meaningful when `len > 0`).
    pub fn end_inclusive(&self) -> u64 {
        (self.start + self.len).saturating_sub(1)
    }
}

impl fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobRead")
            .field("start", &self.start)
            .field("len", &self.len)
            .field("total", &self.total)
            .field("partial", &self.partial)
            .finish_non_exhaustive()
    }
}

/// What `open_range` found.
#[derive(Debug)]
pub enum RangeRead {
    Read(BlobRead),
    /// The range lies outside the object (416 with `Content-Range: bytes */total`).
    Unsatisfiable {
        total: u64,
    },
}

/// One byte range of a `Range: bytes=…` header (RFC 9110 §14.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=start-` or `bytes=start-end` (end inclusive).
    From { start: u64, end: Option<u64> },
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parses a `Range` header value. `None` when it is not a single well-formed byte range: the
    /// header is then ignored and the whole object served, as RFC 9110 §14.2 allows (multiple
    /// ranges are not supported).
    pub fn parse_header(value: &str) -> Option<Self> {
        let (unit, spec) = value.trim().split_once('=')?;
        if !unit.trim().eq_ignore_ascii_case("bytes") {
            return None;
        }
        let spec = spec.trim();
        if spec.contains(',') {
            return None;
        }
        let (first, last) = spec.split_once('-')?;
        let (first, last) = (first.trim(), last.trim());
        let num = |s: &str| -> Option<u64> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        if first.is_empty() {
            return num(last).map(ByteRange::Suffix);
        }
        let start = num(first)?;
        if last.is_empty() {
            return Some(ByteRange::From { start, end: None });
        }
        let end = num(last)?;
        (end >= start).then_some(ByteRange::From {
            start,
            end: Some(end),
        })
    }

    /// The inclusive `(first, last)` bytes of this range in an object of `total` bytes, or `None`
    /// when it is unsatisfiable (starts at or after the end, or is an empty suffix).
    pub fn resolve(self, total: u64) -> Option<(u64, u64)> {
        if total == 0 {
            return None;
        }
        match self {
            ByteRange::From { start, end } => {
                if start >= total {
                    return None;
                }
                let end = end.map_or(total - 1, |e| e.min(total - 1));
                Some((start, end))
            }
            ByteRange::Suffix(0) => None,
            ByteRange::Suffix(n) => Some((total.saturating_sub(n), total - 1)),
        }
    }
}

/// What a signed URL allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobOp {
    Put,
    Get,
}

impl BlobOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BlobOp::Put => "put",
            BlobOp::Get => "get",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "put" => Some(BlobOp::Put),
            "get" => Some(BlobOp::Get),
            _ => None,
        }
    }
}

/// Why a signed URL is refused (the route answers 403 FORBIDDEN for every one of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlobUrlError {
    #[error("the signed URL is malformed")]
    Malformed,
    #[error("the signed URL's signature does not match")]
    BadSignature,
    #[error("the signed URL has expired")]
    Expired,
}

impl From<BlobUrlError> for AppError {
    fn from(e: BlobUrlError) -> Self {
        AppError::Forbidden(e.to_string())
    }
}

/// The query string of a local signed URL:
/// `op=put|get&size=N&exp=UNIX&ct=<pct>[&name=<pct>]&sig=<base64url>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedQuery {
    pub op: BlobOp,
    pub size: u64,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// The content type the object is served as.
    pub ct: String,
    /// The file name of `Content-Disposition` (downloads only).
    pub name: Option<String>,
    sig: Vec<u8>,
}

impl SignedQuery {
    /// Parses the raw query (without `?`). Repeated keys are refused (which one would be
    /// checked?); keys this URL scheme does not use are ignored.
    pub fn parse(raw_query: &str) -> Result<Self, BlobUrlError> {
        let mut fields: BTreeMap<&str, String> = BTreeMap::new();
        for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or(BlobUrlError::Malformed)?;
            if !matches!(k, "op" | "size" | "exp" | "ct" | "name" | "sig") {
                continue;
            }
            let v = pct_decode(v).ok_or(BlobUrlError::Malformed)?;
            if fields.insert(k, v).is_some() {
                return Err(BlobUrlError::Malformed);
            }
        }
        let mut take = |k: &str| fields.remove(k).ok_or(BlobUrlError::Malformed);
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let op = BlobOp::parse(&take("op")?).ok_or(BlobUrlError::Malformed)?;
        let size = take("size")?;
        let exp = take("exp")?;
        if !digits(&size) || !digits(&exp) {
            return Err(BlobUrlError::Malformed);
        }
        let size = size.parse().map_err(|_| BlobUrlError::Malformed)?;
        let exp = exp.parse().map_err(|_| BlobUrlError::Malformed)?;
        let ct = take("ct")?;
        let sig = take("sig")?;
        let sig = {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(sig.as_bytes())
                .map_err(|_| BlobUrlError::Malformed)?
        };
        let name = fields.remove("name");
        Ok(Self {
            op,
            size,
            exp,
            ct,
            name,
            sig,
        })
    }
}

/// The signed string: a domain tag, then every field length-prefixed, so that no two field
/// combinations share a canonical form (moving a `&` between `ct` and `name` changes it).
fn canonical(
    op: BlobOp,
    key: &BlobKey,
    size: u64,
    exp: i64,
    ct: &str,
    name: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + ct.len() + name.map_or(0, str::len));
    out.extend_from_slice(b"sc-blob-url-v1\0");
    let mut field = |b: &[u8]| {
        out.extend_from_slice(&(b.len() as u64).to_be_bytes());
        out.extend_from_slice(b);
    };
    field(op.as_str().as_bytes());
    field(key.as_str().as_bytes());
    field(size.to_string().as_bytes());
    field(exp.to_string().as_bytes());
    field(ct.as_bytes());
    match name {
        Some(n) => {
            field(b"1");
            field(n.as_bytes());
        }
        None => field(b"0"),
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters (also usable for
/// `filename*=UTF-8''…` of RFC 8187, whose attr-char set is a superset).
pub fn pct_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (`+` stays a plus); `None` for a broken escape or invalid UTF-8.
pub fn pct_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn io_unavailable(what: &str, e: &io::Error) -> AppError {
    tracing::warn!(error = %e, "blob storage: {what} failed");
    AppError::ServiceUnavailable("the file storage is unavailable".into())
}

#[cfg(unix)]
fn create_private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn create_private_dir(path: &Path) -> io::Result<()> {
    std::fs::create_dir_all(path)
}

/// Streams `len` bytes of `file` from its current position, read on a blocking task in
/// `READ_CHUNK`s with at most `READ_QUEUE` of them ahead of the client. Stops reading when the
/// client goes away.
///
/// Each chunk's buffer comes back to the reader once the bytes are sent, so the kernel copies
/// file pages into memory that is still in the CPU's cache (as `dd` does with its one buffer)
/// rather than into a fresh allocation per chunk.
fn blocking_reader(
    mut file: std::fs::File,
    len: u64,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(READ_QUEUE);
    tokio::task::spawn_blocking(move || {
        let (home, returned) = std::sync::mpsc::channel::<Vec<u8>>();
        let mut left = len;
        let mut at = io::Seek::stream_position(&mut file).unwrap_or(0);
        let end = at + len;
        read_ahead(&file, at, READ_AHEAD.min(len));
        while left > 0 {
            let want = left.min(READ_CHUNK as u64);
            // Keep the kernel reading `READ_AHEAD` beyond what is being copied, so the disk is
            // never idle while the bytes travel.
            let ahead = at + READ_AHEAD;
            if ahead < end {
                read_ahead(&file, ahead, want.min(end - ahead));
            }
            at += want;
            let mut buf = returned
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(READ_CHUNK));
            buf.clear();
            // `read_to_end` into spare capacity: a file reads into uninitialised memory, so
            // the chunk is not zeroed first only to be overwritten.
            let item = match (&mut file).take(want).read_to_end(&mut buf) {
                Ok(0) => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                Ok(n) => {
                    left -= n as u64;
                    Ok(Bytes::from_owner(RecycledChunk {
                        buf,
                        home: home.clone(),
                    }))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                break;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

/// Asks the kernel to read `[offset, offset + len)` into the page cache in the background (a
/// hint: failures change nothing).
fn read_ahead(file: &std::fs::File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    if let Some(len) = std::num::NonZeroU64::new(len) {
        let _ = rustix::fs::fadvise(file, offset, Some(len), rustix::fs::Advice::WillNeed);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// A chunk of a download whose buffer goes back to its reader when dropped (or is freed, once
/// the reader is done).
struct RecycledChunk {
    buf: Vec<u8>,
    home: std::sync::mpsc::Sender<Vec<u8>>,
}

impl AsRef<[u8]> for RecycledChunk {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for RecycledChunk {
    fn drop(&mut self) {
        let _ = self.home.send(std::mem::take(&mut self.buf));
    }
}

/// Removes a temporary file when dropped, unless disarmed: an upload that fails, is refused or
/// whose request is cancelled (the client went away) leaves nothing behind.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The local-disk adapter.
pub struct LocalBlobs {
    root: PathBuf,
    signing_key: [u8; 32],
    public_url: String,
}

impl fmt::Debug for LocalBlobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalBlobs")
            .field("root", &self.root)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl LocalBlobs {
    /// Creates `root` (mode 0700) if needed.
    pub fn new(root: PathBuf, signing_key: [u8; 32], public_url: String) -> io::Result<Self> {
        create_private_dir(&root)?;
        Ok(Self {
            root,
            signing_key,
            public_url: public_url.trim_end_matches('/').to_string(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &BlobKey) -> PathBuf {
        // A BlobKey is `objects/<hex>/<hex>`: it cannot leave the root.
        self.root.join(key.as_str())
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.signing_key).unwrap_or_else(|_| unreachable!())
    }

    /// An absolute signed URL of `/v1/blobs/{key}` for `op`.
    pub fn signed_url(
        &self,
        op: BlobOp,
        key: &BlobKey,
        size: u64,
        content_type: &str,
        name: Option<&str>,
        expires_at: Timestamp,
    ) -> String {
        use base64::Engine;
        // Rounded down: the URL never outlives the `expires_at` the API reports.
        let exp = expires_at.unix_seconds().max(0);
        let mut mac = self.mac();
        mac.update(&canonical(op, key, size, exp, content_type, name));
        let sig =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let mut url = format!(
            "{}/v1/blobs/{}?op={}&size={size}&exp={exp}&ct={}",
            self.public_url,
            key.as_str(),
            op.as_str(),
            pct_encode(content_type)
        );
        if let Some(n) = name {
            url.push_str("&name=");
            url.push_str(&pct_encode(n));
        }
        url.push_str("&sig=");
        url.push_str(&sig);
        url
    }

    /// Checks a signed URL for `op` on `key` at `now`: the signature (constant-time), the
    /// operation, then the expiry.
    pub fn verify(
        &self,
        op: BlobOp,
        key: &BlobKey,
        query: &SignedQuery,
        now: Timestamp,
    ) -> Result<(), BlobUrlError> {
        let mut mac = self.mac();
        mac.update(&canonical(
            query.op,
            key,
            query.size,
            query.exp,
            &query.ct,
            query.name.as_deref(),
        ));
        mac.verify_slice(&query.sig)
            .map_err(|_| BlobUrlError::BadSignature)?;
        if query.op != op {
            return Err(BlobUrlError::BadSignature);
        }
        if now.millis() >= query.exp.saturating_mul(1000) {
            return Err(BlobUrlError::Expired);
        }
        Ok(())
    }

    /// Streams `body` into the object `key` (see `receive`). Returns the bytes written.
    pub async fn write_stream<S, E>(
        &self,
        key: &BlobKey,
        body: S,
        expected_size: u64,
    ) -> AppResult<u64>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: fmt::Display,
    {
        Ok(self.receive(key, body, expected_size).await?.0)
    }

    /// Streams `body` into the object `key`: a temporary file in the same directory, fsynced,
    /// then linked into place. Refuses more than `expected_size` bytes (413) and fewer (400), an
    /// interrupted body (400) and an object that already exists (409); in every such case, and
    /// when the future is dropped, the temporary file is removed. Returns the bytes written and
    /// their SHA-256 (lowercase hex), computed on the way so the object is never read back.
    ///
    /// One blocking task writes and hashes while this task receives, so the network, the disk
    /// and the hash overlap; at most `WRITE_QUEUE` chunks wait between them.
    pub async fn receive<S, E>(
        &self,
        key: &BlobKey,
        body: S,
        expected_size: u64,
    ) -> AppResult<(u64, String)>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: fmt::Display,
    {
        let final_path = self.path_of(key);
        let dir = final_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        let exists = || AppError::conflict("this object has already been uploaded");
        if tokio::fs::try_exists(&final_path)
            .await
            .map_err(|e| io_unavailable("stat", &e))?
        {
            return Err(exists());
        }
        let mk = dir.clone();
        tokio::task::spawn_blocking(move || create_private_dir(&mk))
            .await
            .map_err(AppError::internal)?
            .map_err(|e| io_unavailable("mkdir", &e))?;
        let mut temp = TempFile {
            path: dir.join(format!("{TEMP_PREFIX}{}", Uuid::new_v4().simple())),
            armed: true,
        };
        let mut opts = tokio::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        opts.mode(0o600);
        let file = opts
            .open(&temp.path)
            .await
            .map_err(|e| io_unavailable("create", &e))?
            .into_std()
            .await;
        // Writing and hashing each get a thread and see the same chunks (shared `Bytes`), so an
        // upload costs the slower of the two rather than their sum.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(WRITE_QUEUE);
        let (hash_tx, mut hash_rx) = tokio::sync::mpsc::channel::<Bytes>(WRITE_QUEUE);
        // A large upload also gets a thread that flushes what is written so far, while the
        // writer goes on. Its errors fail the upload: an fsync error is reported only once, so
        // the final fsync could not be trusted to repeat it.
        // The writer holds the only sender: the syncer stops once the writer is done.
        let (kick, syncer) = if expected_size >= 2 * WRITEBACK_STEP {
            let (kick, kicked) = std::sync::mpsc::sync_channel::<()>(1);
            let same = file.try_clone().map_err(|e| io_unavailable("create", &e))?;
            let syncer = tokio::task::spawn_blocking(move || -> io::Result<()> {
                while kicked.recv().is_ok() {
                    same.sync_data()?;
                }
                Ok(())
            });
            (Some(kick), Some(syncer))
        } else {
            (None, None)
        };
        let writer = tokio::task::spawn_blocking(move || -> io::Result<()> {
            use std::io::Write;
            let mut out = std::io::BufWriter::with_capacity(WRITE_BUFFER, file);
            let (mut written, mut kicked_at) = (0u64, 0u64);
            while let Some(chunk) = rx.blocking_recv() {
                out.write_all(&chunk)?;
                written += chunk.len() as u64;
                if let Some(kick) = &kick
                    && written - kicked_at >= WRITEBACK_STEP
                {
                    // Busy with the last step: this one is flushed with the next.
                    let _ = kick.try_send(());
                    kicked_at = written;
                }
            }
            drop(kick);
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()
        });
        let hasher = tokio::task::spawn_blocking(move || {
            let mut hasher = Sha256::new();
            while let Some(chunk) = hash_rx.blocking_recv() {
                hasher.update(&chunk);
            }
            hex(&hasher.finalize())
        });
        let mut body = std::pin::pin!(body);
        let mut written: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk
                .map_err(|e| AppError::validation("body", format!("the upload broke off: {e}")))?;
            let n = chunk.len() as u64;
            if written.saturating_add(n) > expected_size {
                return Err(AppError::PayloadTooLarge(format!(
                    "the body is larger than the declared {expected_size} bytes"
                )));
            }
            written += n;
            if hash_tx.send(chunk.clone()).await.is_err() || tx.send(chunk).await.is_err() {
                // The writer stopped: its error says why.
                break;
            }
        }
        drop(tx);
        drop(hash_tx);
        let written_back = match syncer {
            Some(syncer) => syncer.await.map_err(AppError::internal)?,
            None => Ok(()),
        };
        writer
            .await
            .map_err(AppError::internal)?
            .and(written_back)
            .map_err(|e| io_unavailable("write", &e))?;
        let sha256 = hasher.await.map_err(AppError::internal)?;
        if written != expected_size {
            return Err(AppError::validation(
                "body",
                format!("expected {expected_size} bytes, received {written}"),
            ));
        }
        // A hard link never replaces an existing object (rename would); the temporary name
        // is then removed by the guard.
        match tokio::fs::hard_link(&temp.path, &final_path).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(exists()),
            Err(_) => {
                // A file system without hard links: check, then rename.
                if tokio::fs::try_exists(&final_path).await.unwrap_or(true) {
                    return Err(exists());
                }
                tokio::fs::rename(&temp.path, &final_path)
                    .await
                    .map_err(|e| io_unavailable("rename", &e))?;
                temp.armed = false;
            }
        }
        drop(temp);
        // The new directory entry is durable once the directory is synced.
        if let Ok(d) = tokio::fs::File::open(&dir).await {
            let _ = d.sync_all().await;
        }
        Ok((written, sha256))
    }

    /// Opens `key` for reading, whole or the given range. `None` when the object is absent.
    pub async fn open_range(
        &self,
        key: &BlobKey,
        range: Option<ByteRange>,
    ) -> AppResult<Option<RangeRead>> {
        let mut file = match tokio::fs::File::open(self.path_of(key)).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_unavailable("open", &e)),
        };
        let total = file
            .metadata()
            .await
            .map_err(|e| io_unavailable("stat", &e))?
            .len();
        let (start, len, partial) = match range {
            None => (0, total, false),
            Some(r) => match r.resolve(total) {
                Some((first, last)) => (first, last - first + 1, true),
                None => return Ok(Some(RangeRead::Unsatisfiable { total })),
            },
        };
        if start > 0 {
            file.seek(io::SeekFrom::Start(start))
                .await
                .map_err(|e| io_unavailable("seek", &e))?;
        }
        let body = blocking_reader(file.into_std().await, len);
        Ok(Some(RangeRead::Read(BlobRead {
            body: Box::pin(body),
            start,
            len,
            total,
            partial,
        })))
    }

    pub async fn size_of(&self, key: &BlobKey) -> AppResult<Option<u64>> {
        match tokio::fs::metadata(self.path_of(key)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_unavailable("stat", &e)),
        }
    }

    /// Up to `max` bytes from the start of the object (fewer only when the object is shorter).
    pub async fn read_head(&self, key: &BlobKey, max: usize) -> AppResult<Vec<u8>> {
        let file = match tokio::fs::File::open(self.path_of(key)).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(AppError::NotFound("object".into()));
            }
            Err(e) => return Err(io_unavailable("open", &e)),
        };
        let mut head = Vec::with_capacity(max.min(64 * 1024));
        file.take(max as u64)
            .read_to_end(&mut head)
            .await
            .map_err(|e| io_unavailable("read", &e))?;
        Ok(head)
    }

    /// SHA-256 of the object, lowercase hex, read in bounded chunks on the blocking pool.
    pub async fn sha256_hex(&self, key: &BlobKey) -> AppResult<String> {
        let path = self.path_of(key);
        let res = tokio::task::spawn_blocking(move || -> io::Result<String> {
            let mut f = std::fs::File::open(path)?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; IO_CHUNK];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            Ok(hex(&hasher.finalize()))
        })
        .await
        .map_err(AppError::internal)?;
        match res {
            Ok(h) => Ok(h),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(AppError::NotFound("object".into()))
            }
            Err(e) => Err(io_unavailable("read", &e)),
        }
    }

    /// Copies `from` to a new object `to` (temporary file, fsync, link: `to` must not exist).
    pub async fn copy(&self, from: &BlobKey, to: &BlobKey) -> AppResult<()> {
        let src = self.path_of(from);
        let dst = self.path_of(to);
        let res = tokio::task::spawn_blocking(move || -> io::Result<()> {
            let dir = dst.parent().map(Path::to_path_buf).unwrap_or_default();
            create_private_dir(&dir)?;
            let temp = TempFile {
                path: dir.join(format!("{TEMP_PREFIX}{}", Uuid::new_v4().simple())),
                armed: true,
            };
            std::fs::copy(&src, &temp.path)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&temp.path, std::fs::Permissions::from_mode(0o600))?;
            }
            std::fs::File::open(&temp.path)?.sync_all()?;
            std::fs::hard_link(&temp.path, &dst)?;
            drop(temp);
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })
        .await
        .map_err(AppError::internal)?;
        match res {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(AppError::NotFound("object".into()))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(AppError::conflict("the target object already exists"))
            }
            Err(e) => Err(io_unavailable("copy", &e)),
        }
    }

    /// Deletes the object; an absent object is not an error.
    pub async fn delete(&self, key: &BlobKey) -> AppResult<()> {
        match tokio::fs::remove_file(self.path_of(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_unavailable("delete", &e)),
        }
    }

    /// `ok` while the root is a directory, `down` otherwise.
    pub fn health(&self) -> DepState {
        match std::fs::metadata(&self.root) {
            Ok(m) if m.is_dir() => DepState::Ok,
            _ => DepState::Down,
        }
    }

    /// Removes temporary files older than `older_than`: writes a crash (or `kill -9`) cut short.
    /// Returns how many were removed.
    pub async fn sweep_temp(&self, older_than: Duration) -> AppResult<u64> {
        let objects = self.root.join("objects");
        tokio::task::spawn_blocking(move || -> io::Result<u64> {
            let mut removed = 0;
            let shards = match std::fs::read_dir(&objects) {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            };
            for shard in shards.flatten() {
                let Ok(entries) = std::fs::read_dir(shard.path()) else {
                    continue;
                };
                for entry in entries.flatten() {
                    if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                        continue;
                    }
                    let old = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age >= older_than);
                    if old && std::fs::remove_file(entry.path()).is_ok() {
                        removed += 1;
                    }
                }
            }
            Ok(removed)
        })
        .await
        .map_err(AppError::internal)?
        .map_err(|e| io_unavailable("sweep", &e))
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// The blob store port. One variant per backend; every method has the same meaning on each.
#[derive(Debug)]
pub enum BlobStore {
    Local(LocalBlobs),
    S3(S3Blobs),
}

impl BlobStore {
    /// root: `data_dir/blobs` (created 0700); signing_key: see [`derive_url_signing_key`];
    /// public_url: the server's public origin, e.g. `http://127.0.0.1:8080`.
    pub fn local(root: PathBuf, signing_key: [u8; 32], public_url: String) -> io::Result<Self> {
        Ok(BlobStore::Local(LocalBlobs::new(
            root,
            signing_key,
            public_url,
        )?))
    }

    /// An S3-compatible bucket (see [`S3Blobs`]).
    pub fn s3(settings: S3Settings) -> io::Result<Self> {
        Ok(BlobStore::S3(S3Blobs::new(settings)?))
    }

    /// The local adapter, whose signed URLs this server serves (`None` on S3).
    pub fn as_local(&self) -> Option<&LocalBlobs> {
        match self {
            BlobStore::Local(l) => Some(l),
            BlobStore::S3(_) => None,
        }
    }

    /// The S3 adapter (`None` on local disk).
    pub fn as_s3(&self) -> Option<&S3Blobs> {
        match self {
            BlobStore::S3(s) => Some(s),
            BlobStore::Local(_) => None,
        }
    }

    /// Where the client PUTs the bytes of a new object. A declared `sha256` (lowercase hex) is
    /// signed into S3 upload URLs, so the store checks the bytes against it; the local store
    /// hashes what it receives and the caller compares.
    pub fn upload_target(
        &self,
        key: &BlobKey,
        size: u64,
        content_type: &str,
        sha256: Option<&str>,
        expires_at: Timestamp,
    ) -> UploadTarget {
        match self {
            BlobStore::Local(l) => UploadTarget {
                url: l.signed_url(BlobOp::Put, key, size, content_type, None, expires_at),
                method: "PUT",
                headers: BTreeMap::from([("Content-Type".to_string(), content_type.to_string())]),
                expires_at,
            },
            BlobStore::S3(s) => s.upload_target(key, size, content_type, sha256, expires_at),
        }
    }

    /// A signed GET URL that serves the object as an attachment named `file_name`.
    pub fn download_url(
        &self,
        key: &BlobKey,
        size: u64,
        file_name: &str,
        content_type: &str,
        expires_at: Timestamp,
    ) -> String {
        match self {
            BlobStore::Local(l) => l.signed_url(
                BlobOp::Get,
                key,
                size,
                content_type,
                Some(file_name),
                expires_at,
            ),
            BlobStore::S3(s) => s.download_url(key, file_name, content_type, expires_at),
        }
    }

    pub async fn size_of(&self, key: &BlobKey) -> AppResult<Option<u64>> {
        async {
            match self {
                BlobStore::Local(l) => l.size_of(key).await,
                BlobStore::S3(s) => s.size_of(key).await,
            }
        }
        .instrument(sc_core::dependency_span!("blobs", "blob.size_of"))
        .await
    }

    pub async fn read_head(&self, key: &BlobKey, max: usize) -> AppResult<Vec<u8>> {
        async {
            match self {
                BlobStore::Local(l) => l.read_head(key, max).await,
                BlobStore::S3(s) => s.read_head(key, max).await,
            }
        }
        .instrument(sc_core::dependency_span!("blobs", "blob.read_head"))
        .await
    }

    /// Size, first `max` bytes and (S3, when the store reports it) SHA-256 of the object;
    /// `None` when it does not exist. One ranged GET on S3.
    pub async fn probe(&self, key: &BlobKey, max: usize) -> AppResult<Option<BlobProbe>> {
        async {
            match self {
                BlobStore::Local(l) => {
                    let Some(size) = l.size_of(key).await? else {
                        return Ok(None);
                    };
                    let head = l.read_head(key, max).await?;
                    Ok(Some(BlobProbe {
                        size,
                        head,
                        sha256: None,
                    }))
                }
                BlobStore::S3(s) => s.probe(key, max).await,
            }
        }
        .instrument(sc_core::dependency_span!("blobs", "blob.probe"))
        .await
    }

    /// The SHA-256 the store itself verified at the PUT (S3 with a declared digest); `None` on
    /// local disk, whose digest of the received bytes is recorded by the caller.
    pub async fn stored_sha256(&self, key: &BlobKey) -> AppResult<Option<String>> {
        async {
            match self {
                BlobStore::Local(_) => Ok(None),
                BlobStore::S3(s) => s.stored_sha256(key).await,
            }
        }
        .instrument(sc_core::dependency_span!("blobs", "blob.stored_sha256"))
        .await
    }

    pub async fn sha256_hex(&self, key: &BlobKey) -> AppResult<String> {
        async {
            match self {
                BlobStore::Local(l) => l.sha256_hex(key).await,
                BlobStore::S3(s) => s.sha256_hex(key).await,
            }
        }
        .instrument(sc_core::dependency_span!("blobs", "blob.sha256_hex"))
        .await
    }

    /// Stores a small object the server makes itself (a generated image).
    pub async fn put_bytes(
        &self,
        key: &BlobKey,
        bytes: Bytes,
        content_type: &str,
    ) -> AppResult<()> {
        async {
            match self {
                BlobStore::Local(l) => {
                    let size = bytes.len() as u64;
                    let body = futures_util::stream::once(async move { Ok::<_, io::Error>(bytes) });
                    l.write_stream(key, body, size).await.map(|_| ())
                }
                BlobStore::S3(s) => s.put(key, bytes, content_type).await,
            }
        }
        .instrument(sc_core::dependency_span!("blobs", "blob.put_bytes"))
        .await
    }

    pub async fn copy(&self, from: &BlobKey, to: &BlobKey) -> AppResult<()> {
        async {
            match self {
                BlobStore::Local(l) => l.copy(from, to).await,
                BlobStore::S3(s) => s.copy(from, to).await,
            }
        }
        .instrument(sc_core::dependency_span!("blobs", "blob.copy"))
        .await
    }

    pub async fn delete(&self, key: &BlobKey) -> AppResult<()> {
        async {
            match self {
                BlobStore::Local(l) => l.delete(key).await,
                BlobStore::S3(s) => s.delete(key).await,
            }
        }
        .instrument(sc_core::dependency_span!("blobs", "blob.delete"))
        .await
    }

    pub fn health(&self) -> DepState {
        match self {
            BlobStore::Local(l) => l.health(),
            BlobStore::S3(s) => s.health(),
        }
    }

    /// Removes leftovers of interrupted writes older than `older_than` (for the cleanup job).
    pub async fn sweep_temp(&self, older_than: Duration) -> AppResult<u64> {
        match self {
            BlobStore::Local(l) => l.sweep_temp(older_than).await,
            // A PUT to S3 is atomic: an interrupted one leaves nothing behind.
            BlobStore::S3(_) => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    const KEY: [u8; 32] = [7; 32];

    fn store(dir: &Path) -> LocalBlobs {
        LocalBlobs::new(dir.join("blobs"), KEY, "http://127.0.0.1:8080/".into()).unwrap()
    }

    fn query_of(url: &str) -> &str {
        url.split_once('?').map(|(_, q)| q).unwrap_or_default()
    }

    fn chunks(parts: &[&[u8]]) -> impl Stream<Item = Result<Bytes, io::Error>> + use<> {
        let v: Vec<Result<Bytes, io::Error>> = parts
            .iter()
            .map(|p| Ok(Bytes::copy_from_slice(p)))
            .collect();
        stream::iter(v)
    }

    fn later() -> Timestamp {
        Timestamp::now().plus(Duration::from_secs(300))
    }

    #[test]
    fn keys_have_one_shape() {
        let k = BlobKey::new_random();
        assert_eq!(BlobKey::parse(k.as_str()), Some(k.clone()));
        let s = k.as_str();
        assert!(s.starts_with("objects/"));
        assert_eq!(s.len(), "objects/".len() + 2 + 1 + 32);
        let id = &s[11..];
        for bad in [
            "",
            "objects/",
            &format!("objects/zz/{id}"),
            &format!("objects/{}/{}", "00", "0".repeat(32)),
            &format!("objects/../{id}"),
            &format!("/objects/{}/{id}", &id[..2]),
            &format!("objects/{}/{id}/x", &id[..2]),
            &format!("objects/{}/{}", &id[..2], id.to_uppercase()),
            &format!("other/{}/{id}", &id[..2]),
        ] {
            assert_eq!(BlobKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_signing_key_is_derived_from_the_data_key() {
        let a = derive_url_signing_key(&[1; 32]);
        assert_eq!(a, derive_url_signing_key(&[1; 32]));
        assert_ne!(a, derive_url_signing_key(&[2; 32]));
        assert_ne!(a, [1; 32]);
    }

    #[test]
    fn signed_urls_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let key = BlobKey::new_random();
        let now = Timestamp::now();
        let put = s.signed_url(BlobOp::Put, &key, 42, "image/png", None, later());
        assert!(put.starts_with(&format!(
            "http://127.0.0.1:8080/v1/blobs/{key}?op=put&size=42&"
        )));
        let q = SignedQuery::parse(query_of(&put)).unwrap();
        assert_eq!(
            (q.op, q.size, q.ct.as_str(), q.name.as_deref()),
            (BlobOp::Put, 42, "image/png", None)
        );
        s.verify(BlobOp::Put, &key, &q, now).unwrap();
        // A PUT URL does not allow a GET, and the other way round.
        assert_eq!(
            s.verify(BlobOp::Get, &key, &q, now),
            Err(BlobUrlError::BadSignature)
        );

        let name = "Résumé & notes; \"final\" 100%.pdf";
        let get = s.signed_url(
            BlobOp::Get,
            &key,
            42,
            "application/pdf",
            Some(name),
            later(),
        );
        let q = SignedQuery::parse(query_of(&get)).unwrap();
        assert_eq!(q.name.as_deref(), Some(name));
        s.verify(BlobOp::Get, &key, &q, now).unwrap();
        assert_eq!(
            s.verify(BlobOp::Put, &key, &q, now),
            Err(BlobUrlError::BadSignature)
        );
    }

    #[test]
    fn every_tampered_field_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let key = BlobKey::new_random();
        let now = Timestamp::now();
        let url = s.signed_url(BlobOp::Get, &key, 42, "image/png", Some("a.png"), later());
        let raw = query_of(&url).to_string();
        let good = SignedQuery::parse(&raw).unwrap();
        s.verify(BlobOp::Get, &key, &good, now).unwrap();

        let exp = good.exp.to_string();
        let sig = raw.rsplit_once("sig=").unwrap().1.to_string();
        let mut flipped = sig.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        let tampered = [
            raw.replace("op=get", "op=put"),
            raw.replace("size=42", "size=43"),
            raw.replace(&format!("exp={exp}"), &format!("exp={}", good.exp + 3600)),
            raw.replace("ct=image%2Fpng", "ct=text%2Fhtml"),
            raw.replace("name=a.png", "name=a.html"),
            raw.replace("&name=a.png", ""),
            raw.replace(&sig, &flipped),
            raw.replace(&sig, &sig[..sig.len() - 3]),
        ];
        for t in &tampered {
            assert_ne!(t, &raw, "the replacement did not apply");
            let q = SignedQuery::parse(t).unwrap();
            let op = if t.contains("op=put") {
                BlobOp::Put
            } else {
                BlobOp::Get
            };
            assert_eq!(
                s.verify(op, &key, &q, now),
                Err(BlobUrlError::BadSignature),
                "{t}"
            );
        }
        // Another key, another signing key.
        let other = BlobKey::new_random();
        assert_eq!(
            s.verify(BlobOp::Get, &other, &good, now),
            Err(BlobUrlError::BadSignature)
        );
        let s2 = LocalBlobs::new(dir.path().join("b2"), [8; 32], "http://x".into()).unwrap();
        assert_eq!(
            s2.verify(BlobOp::Get, &key, &good, now),
            Err(BlobUrlError::BadSignature)
        );
        // A name added to a URL signed without one.
        let put = s.signed_url(BlobOp::Put, &key, 1, "image/png", None, later());
        let q = SignedQuery::parse(&format!("{}&name=x.png", query_of(&put))).unwrap();
        assert_eq!(
            s.verify(BlobOp::Put, &key, &q, now),
            Err(BlobUrlError::BadSignature)
        );
    }

    #[test]
    fn expired_urls_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let key = BlobKey::new_random();
        let exp = Timestamp::from_unix_seconds(Timestamp::now().unix_seconds() + 10);
        let url = s.signed_url(BlobOp::Put, &key, 1, "text/plain", None, exp);
        let q = SignedQuery::parse(query_of(&url)).unwrap();
        s.verify(BlobOp::Put, &key, &q, exp.minus(Duration::from_millis(1)))
            .unwrap();
        assert_eq!(
            s.verify(BlobOp::Put, &key, &q, exp),
            Err(BlobUrlError::Expired)
        );
        let past = Timestamp::now().minus(Duration::from_secs(1));
        let url = s.signed_url(BlobOp::Put, &key, 1, "text/plain", None, past);
        let q = SignedQuery::parse(query_of(&url)).unwrap();
        assert_eq!(
            s.verify(BlobOp::Put, &key, &q, Timestamp::now()),
            Err(BlobUrlError::Expired)
        );
        assert_eq!(AppError::from(BlobUrlError::Expired).status(), 403);
    }

    #[test]
    fn malformed_queries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let key = BlobKey::new_random();
        let url = s.signed_url(BlobOp::Put, &key, 5, "text/plain", None, later());
        let raw = query_of(&url);
        for bad in [
            String::new(),
            raw.replace("op=put", "op=delete"),
            raw.replace("size=5", "size=-5"),
            raw.replace("size=5", "size=+5"),
            raw.replace("size=5", "size="),
            format!("{raw}&size=5"),
            format!("{raw}&op=put"),
            raw.replace("ct=text%2Fplain", "ct=%zz"),
            raw.replace("ct=text%2Fplain", "ct=%FF"),
            raw.replace("&sig=", "&sig=***"),
            raw.replace("&sig=", "&nosig="),
            format!("{raw}&flag"),
        ] {
            assert!(SignedQuery::parse(&bad).is_err(), "{bad}");
        }
        // Unknown keys are ignored.
        let q = SignedQuery::parse(&format!("{raw}&cache=1")).unwrap();
        s.verify(BlobOp::Put, &key, &q, Timestamp::now()).unwrap();
    }

    #[test]
    fn percent_coding_round_trips() {
        for s in ["", "a b+c/d?e&f=g%h", "日本語 ✓", "\"quoted\";x"] {
            assert_eq!(pct_decode(&pct_encode(s)).as_deref(), Some(s));
        }
        assert_eq!(pct_encode("a b/é"), "a%20b%2F%C3%A9");
        assert_eq!(pct_decode("a+b").as_deref(), Some("a+b"));
        assert_eq!(pct_decode("%4"), None);
        assert_eq!(pct_decode("%+1"), None);
    }

    fn entries(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|r| {
                r.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn write_stream_takes_exactly_the_declared_size() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let key = BlobKey::new_random();
        let n = s
            .write_stream(&key, chunks(&[b"hello ", b"world"]), 11)
            .await
            .unwrap();
        assert_eq!(n, 11);
        assert_eq!(s.size_of(&key).await.unwrap(), Some(11));
        assert_eq!(s.read_head(&key, 5).await.unwrap(), b"hello");
        assert_eq!(s.read_head(&key, 100).await.unwrap(), b"hello world");
        let shard = s.path_of(&key).parent().unwrap().to_path_buf();
        assert_eq!(entries(&shard).len(), 1, "no temporary file left");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(s.path_of(&key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(s.root()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        // An object is never replaced: a replayed PUT URL cannot swap the checked bytes.
        let e = s
            .write_stream(&key, chunks(&[b"HELLO WORLD"]), 11)
            .await
            .unwrap_err();
        assert_eq!(e.status(), 409);
        assert_eq!(s.read_head(&key, 100).await.unwrap(), b"hello world");
        assert_eq!(entries(&shard).len(), 1);
        // Empty objects are fine when declared so.
        let empty = BlobKey::new_random();
        assert_eq!(s.write_stream(&empty, chunks(&[]), 0).await.unwrap(), 0);
        assert_eq!(s.size_of(&empty).await.unwrap(), Some(0));
    }

    #[tokio::test]
    async fn one_byte_too_many_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let key = BlobKey::new_random();
        let e = s
            .write_stream(&key, chunks(&[b"hello ", b"world!"]), 11)
            .await
            .unwrap_err();
        assert_eq!(e.status(), 413);
        assert_eq!(s.size_of(&key).await.unwrap(), None);
        let shard = s.path_of(&key).parent().unwrap().to_path_buf();
        assert!(entries(&shard).is_empty(), "{:?}", entries(&shard));
        // Short bodies and broken streams are refused too.
        let e = s
            .write_stream(&key, chunks(&[b"hello"]), 11)
            .await
            .unwrap_err();
        assert_eq!(e.status(), 400);
        let broken = stream::iter(vec![
            Ok(Bytes::from_static(b"hel")),
            Err(io::Error::other("reset")),
        ]);
        let e = s.write_stream(&key, broken, 11).await.unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(entries(&shard).is_empty());
        assert_eq!(s.size_of(&key).await.unwrap(), None);
    }

    #[tokio::test]
    async fn the_temp_file_is_never_visible_under_the_final_key() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(store(dir.path()));
        let key = BlobKey::new_random();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(1);
        let body = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
        let task = {
            let (s, key) = (s.clone(), key.clone());
            tokio::spawn(async move { s.write_stream(&key, body, 6).await })
        };
        tx.send(Ok(Bytes::from_static(b"abc"))).await.unwrap();
        tx.send(Ok(Bytes::from_static(b"d"))).await.unwrap();
        // The writer has taken the first chunk: the temporary file exists, the object does not.
        let shard = s.path_of(&key).parent().unwrap().to_path_buf();
        for _ in 0..100 {
            if !entries(&shard).is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let names = entries(&shard);
        assert_eq!(names.len(), 1);
        assert!(names[0].starts_with(TEMP_PREFIX), "{names:?}");
        assert_eq!(s.size_of(&key).await.unwrap(), None);
        assert!(s.read_head(&key, 10).await.is_err());
        tx.send(Ok(Bytes::from_static(b"ef"))).await.unwrap();
        drop(tx);
        assert_eq!(task.await.unwrap().unwrap(), 6);
        assert_eq!(s.read_head(&key, 10).await.unwrap(), b"abcdef");
        assert_eq!(entries(&shard), vec![key.as_str()[11..].to_string()]);
    }

    #[tokio::test]
    async fn a_cancelled_write_removes_its_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let key = BlobKey::new_random();
        let body = stream::iter(vec![Ok::<_, io::Error>(Bytes::from_static(b"abc"))])
            .chain(stream::pending());
        let r =
            tokio::time::timeout(Duration::from_millis(100), s.write_stream(&key, body, 10)).await;
        assert!(r.is_err(), "the write should still be waiting");
        let shard = s.path_of(&key).parent().unwrap().to_path_buf();
        assert!(entries(&shard).is_empty(), "{:?}", entries(&shard));
    }

    #[tokio::test]
    async fn hash_copy_delete_and_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let key = BlobKey::new_random();
        s.write_stream(&key, chunks(&[b"ab", b"c"]), 3)
            .await
            .unwrap();
        assert_eq!(
            s.sha256_hex(&key).await.unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let copy = BlobKey::new_random();
        s.copy(&key, &copy).await.unwrap();
        assert_eq!(s.read_head(&copy, 10).await.unwrap(), b"abc");
        assert_eq!(s.copy(&key, &copy).await.unwrap_err().status(), 409);
        let missing = BlobKey::new_random();
        assert_eq!(
            s.copy(&missing, &BlobKey::new_random())
                .await
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(s.sha256_hex(&missing).await.unwrap_err().status(), 404);
        assert_eq!(s.size_of(&missing).await.unwrap(), None);
        s.delete(&key).await.unwrap();
        s.delete(&key).await.unwrap();
        assert_eq!(s.size_of(&key).await.unwrap(), None);
        assert_eq!(s.size_of(&copy).await.unwrap(), Some(3));
        assert_eq!(s.health(), DepState::Ok);

        let shard = s.path_of(&copy).parent().unwrap().to_path_buf();
        std::fs::write(shard.join(format!("{TEMP_PREFIX}left-by-a-crash")), b"x").unwrap();
        assert_eq!(s.sweep_temp(Duration::from_secs(3600)).await.unwrap(), 0);
        assert_eq!(s.sweep_temp(Duration::ZERO).await.unwrap(), 1);
        assert_eq!(entries(&shard).len(), 1);
    }

    #[test]
    fn range_headers_parse() {
        use ByteRange::*;
        let p = ByteRange::parse_header;
        assert_eq!(
            p("bytes=0-499"),
            Some(From {
                start: 0,
                end: Some(499)
            })
        );
        assert_eq!(
            p("bytes=500-"),
            Some(From {
                start: 500,
                end: None
            })
        );
        assert_eq!(p("bytes=-500"), Some(Suffix(500)));
        assert_eq!(
            p(" Bytes = 5-5 "),
            Some(From {
                start: 5,
                end: Some(5)
            })
        );
        for bad in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=5-3",
            "bytes=a-b",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=+1-2",
            "bytes=1--2",
            "bytes=99999999999999999999-",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    #[test]
    fn ranges_resolve_against_the_size() {
        use ByteRange::*;
        assert_eq!(
            From {
                start: 0,
                end: Some(499)
            }
            .resolve(1000),
            Some((0, 499))
        );
        assert_eq!(
            From {
                start: 0,
                end: Some(5000)
            }
            .resolve(1000),
            Some((0, 999))
        );
        assert_eq!(
            From {
                start: 999,
                end: None
            }
            .resolve(1000),
            Some((999, 999))
        );
        assert_eq!(
            From {
                start: 1000,
                end: None
            }
            .resolve(1000),
            None
        );
        assert_eq!(Suffix(10).resolve(1000), Some((990, 999)));
        assert_eq!(Suffix(5000).resolve(1000), Some((0, 999)));
        assert_eq!(Suffix(0).resolve(1000), None);
        assert_eq!(
            From {
                start: 0,
                end: None
            }
            .resolve(0),
            None
        );
        assert_eq!(Suffix(1).resolve(0), None);
    }

    async fn collect(r: BlobRead) -> Vec<u8> {
        let mut out = Vec::new();
        let mut body = r.body;
        while let Some(c) = body.next().await {
            out.extend_from_slice(&c.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn open_range_serves_whole_objects_and_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let key = BlobKey::new_random();
        let data: Vec<u8> = (0..=255u8).cycle().take(600_000).collect();
        let parts: Vec<&[u8]> = data.chunks(70_000).collect();
        s.write_stream(&key, chunks(&parts), data.len() as u64)
            .await
            .unwrap();

        let Some(RangeRead::Read(r)) = s.open_range(&key, None).await.unwrap() else {
            panic!("expected the whole object");
        };
        assert_eq!(
            (r.start, r.len, r.total, r.partial),
            (0, 600_000, 600_000, false)
        );
        assert_eq!(collect(r).await, data);

        let range = ByteRange::From {
            start: 300_000,
            end: Some(300_009),
        };
        let Some(RangeRead::Read(r)) = s.open_range(&key, Some(range)).await.unwrap() else {
            panic!("expected a range");
        };
        assert_eq!(
            (r.start, r.end_inclusive(), r.len, r.partial),
            (300_000, 300_009, 10, true)
        );
        assert_eq!(collect(r).await, &data[300_000..300_010]);

        let Some(RangeRead::Read(r)) = s
            .open_range(&key, Some(ByteRange::Suffix(3)))
            .await
            .unwrap()
        else {
            panic!("expected a suffix");
        };
        assert_eq!(collect(r).await, &data[599_997..]);

        let far = ByteRange::From {
            start: 600_000,
            end: None,
        };
        assert!(matches!(
            s.open_range(&key, Some(far)).await.unwrap(),
            Some(RangeRead::Unsatisfiable { total: 600_000 })
        ));
        assert!(
            s.open_range(&BlobKey::new_random(), None)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn the_port_delegates_to_the_local_adapter() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path().join("blobs"), KEY, "http://h:1".into()).unwrap();
        let key = BlobKey::new_random();
        let exp = later();
        let t = store.upload_target(&key, 3, "text/plain", None, exp);
        assert_eq!(t.method, "PUT");
        assert_eq!(t.expires_at, exp);
        assert_eq!(
            t.headers.get("Content-Type").map(String::as_str),
            Some("text/plain")
        );
        let local = store.as_local().unwrap();
        let q = SignedQuery::parse(query_of(&t.url)).unwrap();
        local
            .verify(BlobOp::Put, &key, &q, Timestamp::now())
            .unwrap();
        local
            .write_stream(&key, chunks(&[b"abc"]), q.size)
            .await
            .unwrap();
        assert_eq!(store.size_of(&key).await.unwrap(), Some(3));
        let url = store.download_url(&key, 3, "a b.txt", "text/plain", exp);
        assert!(
            url.contains("op=get") && url.contains("name=a%20b.txt"),
            "{url}"
        );
        let q = SignedQuery::parse(query_of(&url)).unwrap();
        local
            .verify(BlobOp::Get, &key, &q, Timestamp::now())
            .unwrap();
        assert_eq!(store.health(), DepState::Ok);
    }
}

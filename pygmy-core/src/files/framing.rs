//! The record framing every Pygmy file uses, and the durable one-record
//! file built on it.
//!
//! A record is its payload's length (`u32`, little endian), the payload's
//! CRC-32 (`u32`, little endian), then the payload (JSON). The log store
//! (`storage/logstore.rs`), the order archive (`state/archive.rs`) and the
//! single-record files (`record.rs`, the view, the snapshot, the disk
//! identity) all frame their bytes here, so the format lives in one place
//! and knows nothing of what the records hold.

use crate::error::{Error, Result};
use crate::files::Fs;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

/// Bytes before a record's payload: its length and its CRC.
pub(crate) const HEADER_LEN: usize = 8;

/// An `Error::Storage` naming the file and what went wrong with it.
pub(crate) fn storage_err(path: &Path, problem: impl std::fmt::Display) -> Error {
    Error::Storage(format!("{}: {problem}", path.display()))
}

pub(crate) fn io_err(path: &Path, op: &str, err: io::Error) -> Error {
    storage_err(path, format!("{op} failed: {err}"))
}

/// Appends one framed record holding `payload` to `out`.
pub(crate) fn encode_record(out: &mut Vec<u8>, payload: &[u8], path: &Path) -> Result<()> {
    let len =
        u32::try_from(payload.len()).map_err(|_| storage_err(path, "record larger than 4 GiB"))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Appends one framed record holding `value` as JSON to `out`.
pub(crate) fn encode_value<T: Serialize>(out: &mut Vec<u8>, value: &T, path: &Path) -> Result<()> {
    let payload =
        serde_json::to_vec(value).map_err(|e| storage_err(path, format!("encode failed: {e}")))?;
    encode_record(out, &payload, path)
}

/// The record starting at byte `at`: its payload and where the next record
/// starts. `None` when the bytes there are too short or fail their CRC — a
/// torn or corrupt record (or the end of the bytes). Never panics; the
/// length field is checked against the bytes before anything is read.
pub fn decode_record(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let start = at.checked_add(HEADER_LEN)?;
    let header = bytes.get(at..start)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    let payload = bytes.get(start..end)?;
    (crc32fast::hash(payload) == crc).then_some((payload, end))
}

/// `path` with `.tmp` added to its file name (`snapshot` → `snapshot.tmp`).
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(OsString::from).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// The directory holding `path` (`""` for a bare relative file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

/// Reads a file that holds exactly one record: `None` when it is missing, an
/// error when it is anything but one whole, valid, decodable record. Such a
/// file is only ever replaced by rename, so a bad one is corruption, not a
/// torn write.
pub(crate) fn read_single<F: Fs, T: DeserializeOwned>(fs: &F, path: &Path) -> Result<Option<T>> {
    let Some(bytes) = fs.read(path).map_err(|e| io_err(path, "read", e))? else {
        return Ok(None);
    };
    match decode_record(&bytes, 0) {
        Some((payload, end)) if end == bytes.len() => serde_json::from_slice(payload)
            .map(Some)
            .map_err(|e| storage_err(path, format!("record does not decode: {e}"))),
        _ => Err(storage_err(
            path,
            format!(
                "corrupt ({} bytes: short record, bad CRC or trailing bytes)",
                bytes.len()
            ),
        )),
    }
}

/// [`read_single`], telling damage from failure: the outer error is an I/O
/// error or a record that passes its CRC but does not decode (a software
/// mismatch); the inner one names the damage (a short record, a bad CRC,
/// trailing bytes).
pub(crate) fn read_single_checked<F: Fs, T: DeserializeOwned>(
    fs: &F,
    path: &Path,
) -> Result<std::result::Result<Option<T>, String>> {
    let Some(bytes) = fs.read(path).map_err(|e| io_err(path, "read", e))? else {
        return Ok(Ok(None));
    };
    match decode_single(&bytes) {
        Ok(value) => Ok(Ok(Some(value))),
        Err(SingleError::Damaged(problem)) => Ok(Err(format!("{}: {problem}", path.display()))),
        Err(SingleError::Undecodable(e)) => {
            Err(storage_err(path, format!("record does not decode: {e}")))
        }
    }
}

/// Why the bytes of a one-record file were refused.
#[derive(Debug)]
pub enum SingleError {
    /// Not one whole record with a good CRC: damage.
    Damaged(String),
    /// The record passes its CRC but is not a `T`: a software mismatch.
    Undecodable(String),
}

/// Decodes the bytes of a file that holds exactly one record (a snapshot,
/// a view, a view record, a disk identity). Never panics; allocates no more
/// than the decoded value needs (the length field is checked against the
/// bytes before anything is read).
pub fn decode_single<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, SingleError> {
    match decode_record(bytes, 0) {
        Some((payload, end)) if end == bytes.len() => {
            serde_json::from_slice(payload).map_err(|e| SingleError::Undecodable(e.to_string()))
        }
        _ => Err(SingleError::Damaged(format!(
            "corrupt ({} bytes: short record, bad CRC or trailing bytes)",
            bytes.len()
        ))),
    }
}

/// Replaces `path` durably with one record holding `value`: write `*.tmp` and
/// sync it, rename it over `path`, sync the directory.
pub(crate) fn write_single<F: Fs, T: Serialize>(fs: &F, path: &Path, value: &T) -> Result<()> {
    let mut bytes = Vec::new();
    encode_value(&mut bytes, value, path)?;
    let tmp = tmp_path(path);
    fs.write_synced(&tmp, &bytes)
        .map_err(|e| io_err(&tmp, "write", e))?;
    fs.rename(&tmp, path)
        .map_err(|e| io_err(path, "rename", e))?;
    let dir = parent_dir(path);
    fs.sync_dir(dir).map_err(|e| io_err(dir, "sync_dir", e))
}

/// Creates `dir` and syncs it and each of its ancestors, so that the
/// directory entries just made survive a crash (a new directory is durable
/// only once its parent is synced). For a relative path the last ancestor
/// is `""`, the working directory.
pub(crate) fn create_dir_durably<F: Fs>(fs: &F, dir: &Path) -> Result<()> {
    fs.create_dir_all(dir)
        .map_err(|e| io_err(dir, "create_dir_all", e))?;
    for ancestor in dir.ancestors() {
        fs.sync_dir(ancestor)
            .map_err(|e| io_err(ancestor, "sync_dir", e))?;
    }
    Ok(())
}

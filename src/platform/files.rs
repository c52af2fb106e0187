//! Small file helpers for generated local secrets: private (mode 0600) files
//! written whole, so that a reader never sees half of one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Reads a secret file, or creates it (mode 0600, atomically) with `make()`.
pub fn read_or_create_secret(
    path: &Path,
    make: impl FnOnce() -> String,
) -> std::io::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim().to_owned();
        if !existing.is_empty() {
            return Ok(existing);
        }
    }
    let value = make();
    if create_private(path, value.as_bytes())? {
        Ok(value)
    } else {
        // Another process won the race: keep whichever landed first.
        Ok(std::fs::read_to_string(path)?.trim().to_owned())
    }
}

/// Creates `path` with `contents` (mode 0600) unless it exists; `false` when
/// it did (another process may have created it first). The file appears
/// complete or not at all.
pub fn create_private(path: &Path, contents: &[u8]) -> std::io::Result<bool> {
    let tmp = write_private_tmp(path, contents)?;
    // A hard link, unlike a rename, never replaces an existing file.
    let linked = match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    };
    std::fs::remove_file(&tmp)?;
    linked
}

/// Replaces `path` with `contents` (mode 0600) by renaming a complete new
/// file over it, so that readers see the old or the new file, never a mix;
/// the directory is synced so the rename survives a crash.
pub fn replace_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = write_private_tmp(path, contents)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(path)
}

/// Writes `contents` to a new private temporary file beside `path`.
fn write_private_tmp(path: &Path, contents: &[u8]) -> std::io::Result<PathBuf> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let nonce: u32 = rand::random();
    let tmp = path.with_extension(format!("tmp{}-{nonce:08x}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    let written = f.write_all(contents).and_then(|()| f.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

#[cfg(unix)]
fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(not(unix))]
fn sync_dir(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

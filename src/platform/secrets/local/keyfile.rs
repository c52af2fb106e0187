//! The keyring's file in `DATA_DIR`, `secrets.keys`: small JSON, mode 0600,
//! replaced whole by rename so that every process on the `DATA_DIR` reads
//! either the old or the new keyring.
//!
//! ```json
//! {"format": 1, "primary": "1a2b3c4d", "keys": [{"id": "1a2b3c4d", "key": "<base64>"}]}
//! ```
//!
//! Before envelope encryption the one key lived in `secrets.key` (base64).
//! While `secrets.keys` is absent that file is the keyring (its key primary);
//! a rotation writes `secrets.keys` and, once it retired the old key,
//! removes `secrets.key`. A `DATA_DIR` with neither gets a new
//! `secrets.keys` when the store first opens.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::zeroize::{Zeroize as _, Zeroizing};
use serde::{Deserialize, Serialize};

use super::keyring::{Kek, Keyring, KeyringError};
use crate::platform::files;

/// The keyring file's name in `DATA_DIR`.
pub const KEYRING_FILE: &str = "secrets.keys";
/// The single-key file of earlier versions.
pub const LEGACY_KEY_FILE: &str = "secrets.key";
/// Held by a running `rotate-key`, so that two rotations never interleave.
const LOCK_FILE: &str = "secrets.keys.lock";

/// What identifies one version of the keyring file: replacing it by rename
/// changes its inode, and every write changes its modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
}

/// The keyring files of one `DATA_DIR`.
#[derive(Debug, Clone)]
pub struct KeyFile {
    path: PathBuf,
    legacy: PathBuf,
    lock: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileForm {
    format: u32,
    primary: String,
    keys: Vec<FileKey>,
}

#[derive(Serialize, Deserialize)]
struct FileKey {
    id: String,
    key: String,
}

impl Drop for FileKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// The held rotation lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct RotationLock {
    _file: std::fs::File,
}

impl KeyFile {
    /// The keyring files in `data_dir`.
    pub fn in_dir(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(KEYRING_FILE),
            legacy: data_dir.join(LEGACY_KEY_FILE),
            lock: data_dir.join(LOCK_FILE),
        }
    }

    /// The keyring file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current version of the keyring file, `None` while it is absent.
    /// One `stat`: cheap enough to run before every write of a secret.
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        let meta = std::fs::metadata(&self.path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some(Fingerprint {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode,
        })
    }

    /// Whether the keyring file exists and is not the version `seen`.
    pub fn changed_since(&self, seen: Option<Fingerprint>) -> bool {
        self.fingerprint().is_some_and(|now| Some(now) != seen)
    }

    /// Opens the keyring for a store: the keyring file, else the legacy key
    /// file, else a new keyring file with one generated key. Returns the
    /// fingerprint of the file read (`None` for the legacy file).
    pub fn open_or_create(&self) -> Result<(Keyring, Option<Fingerprint>), KeyringError> {
        for _ in 0..3 {
            if let Some(found) = self.load()? {
                return Ok(found);
            }
            let kek = Kek::generate();
            let text = to_text(&Keyring::single(kek))?;
            // Loses quietly to a process that created it first: read again.
            files::create_private(&self.path, text.as_bytes())
                .map_err(|e| self.io("writing", &self.path, e))?;
        }
        Err(KeyringError::Invalid(format!(
            "{} keeps disappearing",
            self.path.display()
        )))
    }

    /// Reads the keyring (keyring file, else legacy key file), `None` when
    /// this `DATA_DIR` has neither. The fingerprint is taken before the read,
    /// so a replacement in between shows as a change next time, never as
    /// none.
    pub fn load(&self) -> Result<Option<(Keyring, Option<Fingerprint>)>, KeyringError> {
        if let Some(before) = self.fingerprint() {
            match read_private(&self.path) {
                Ok(text) => return Ok(Some((self.parse(&text)?, Some(before)))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io("reading", &self.path, e)),
            }
        }
        match read_private(&self.legacy) {
            Ok(text) if text.trim().is_empty() => Ok(None),
            Ok(text) => {
                let kek = Kek::decode(&text).ok_or_else(|| {
                    KeyringError::Invalid(format!(
                        "{} is not the base64 encoding of 32 bytes",
                        self.legacy.display()
                    ))
                })?;
                Ok(Some((Keyring::single(kek), None)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("reading", &self.legacy, e)),
        }
    }

    /// Re-reads the keyring file if it changed since `seen`; `None` when it
    /// did not, or is absent (a store keeps the keyring it has rather than
    /// fall back to another file while running).
    pub fn reload_if_changed(
        &self,
        seen: Option<Fingerprint>,
    ) -> Result<Option<(Keyring, Fingerprint)>, KeyringError> {
        let Some(now) = self.fingerprint() else {
            return Ok(None);
        };
        if Some(now) == seen {
            return Ok(None);
        }
        match read_private(&self.path) {
            Ok(text) => Ok(Some((self.parse(&text)?, now))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("reading", &self.path, e)),
        }
    }

    /// Writes the keyring file atomically (mode 0600).
    pub fn save(&self, keyring: &Keyring) -> Result<(), KeyringError> {
        let text = to_text(keyring)?;
        files::replace_private(&self.path, text.as_bytes())
            .map_err(|e| self.io("writing", &self.path, e))
    }

    /// Removes the legacy key file (once no secret needs its key); `true` if
    /// there was one.
    pub fn remove_legacy(&self) -> Result<bool, KeyringError> {
        match std::fs::remove_file(&self.legacy) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io("removing", &self.legacy, e)),
        }
    }

    /// Takes the rotation lock of this `DATA_DIR` without waiting.
    pub fn lock_for_rotation(&self) -> Result<RotationLock, KeyringError> {
        if let Some(dir) = self.lock.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.io("creating", dir, e))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(|e| self.io("opening", &self.lock, e))?;
        match file.try_lock() {
            Ok(()) => Ok(RotationLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(KeyringError::Locked(self.lock.display().to_string()))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(self.io("locking", &self.lock, e)),
        }
    }

    fn parse(&self, text: &str) -> Result<Keyring, KeyringError> {
        let bad = |why: String| {
            KeyringError::Invalid(format!("{} is not a keyring: {why}", self.path.display()))
        };
        let form: FileForm = serde_json::from_str(text).map_err(|e| {
            // serde's message may quote a value; say only where it failed.
            bad(format!(
                "malformed JSON at line {} column {}",
                e.line(),
                e.column()
            ))
        })?;
        if form.format != 1 {
            return Err(bad(format!("unknown format {}", form.format)));
        }
        let mut primary = None;
        let mut older = Vec::new();
        for (i, entry) in form.keys.iter().enumerate() {
            let kek = Kek::decode(&entry.key)
                .ok_or_else(|| bad(format!("key {} is not base64 of 32 bytes", i + 1)))?;
            if kek.id().as_str() != entry.id {
                return Err(bad(format!(
                    "key {} does not have the id {}",
                    i + 1,
                    entry.id
                )));
            }
            if entry.id == form.primary && primary.is_none() {
                primary = Some(Arc::new(kek));
            } else {
                older.push(Arc::new(kek));
            }
        }
        let primary =
            primary.ok_or_else(|| bad(format!("the primary {} is not listed", form.primary)))?;
        Keyring::new(primary, older)
    }

    fn io(&self, action: &'static str, path: &Path, source: std::io::Error) -> KeyringError {
        KeyringError::Io {
            action,
            path: path.display().to_string(),
            source,
        }
    }
}

/// A file holding key material, wiped from memory when dropped.
fn read_private(path: &Path) -> std::io::Result<Zeroizing<String>> {
    std::fs::read_to_string(path).map(Zeroizing::new)
}

fn to_text(keyring: &Keyring) -> Result<Zeroizing<String>, KeyringError> {
    let keys = std::iter::once(keyring.primary())
        .chain(keyring.older())
        .map(|k| FileKey {
            id: k.id().to_string(),
            key: k.encoded().to_string(),
        })
        .collect();
    let form = FileForm {
        format: 1,
        primary: keyring.primary().id().to_string(),
        keys,
    };
    let mut text = serde_json::to_string_pretty(&form)
        .map_err(|e| KeyringError::Invalid(format!("encoding the keyring: {e}")))?;
    text.push('\n');
    Ok(Zeroizing::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_change_detection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = KeyFile::in_dir(dir.path());
        assert!(file.load().expect("load").is_none());
        let (ring, seen) = file.open_or_create().expect("create");
        assert!(seen.is_some());
        assert!(file.reload_if_changed(seen).expect("same").is_none());
        let next = ring.promote(Arc::new(Kek::generate())).expect("promote");
        file.save(&next).expect("save");
        let (reread, _) = file
            .reload_if_changed(seen)
            .expect("reload")
            .expect("changed");
        assert_eq!(reread.ids(), next.ids());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(file.path()).expect("meta").permissions();
            assert_eq!(mode.mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn the_legacy_key_is_the_keyring_until_a_keyring_file_exists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = super::super::keyring::generate_key();
        std::fs::write(dir.path().join(LEGACY_KEY_FILE), &key).expect("legacy");
        let file = KeyFile::in_dir(dir.path());
        let (ring, seen) = file.open_or_create().expect("open");
        assert!(seen.is_none());
        assert_eq!(ring.primary().id(), Kek::decode(&key).expect("key").id());
        assert!(!file.path().exists(), "opening writes nothing");
    }

    #[test]
    fn a_second_rotation_lock_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = KeyFile::in_dir(dir.path());
        let held = file.lock_for_rotation().expect("first");
        assert!(matches!(
            file.lock_for_rotation(),
            Err(KeyringError::Locked(_))
        ));
        drop(held);
        file.lock_for_rotation().expect("free again");
    }

    #[test]
    fn errors_do_not_quote_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = KeyFile::in_dir(dir.path());
        let key = super::super::keyring::generate_key();
        std::fs::write(
            file.path(),
            format!(r#"{{"format":1,"primary":"x","keys":[{{"id":"x","key":"{key}"}}]}}"#),
        )
        .expect("write");
        let err = file.load().expect_err("wrong id").to_string();
        assert!(!err.contains(&key), "{err}");
    }
}

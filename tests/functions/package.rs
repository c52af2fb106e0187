//! scripts/package: the zip's layout is what the host expects (`docs/functions-protocol.md`
//! §2.1, §2.3). The packaging runs on a stand-in binary, so the layout check
//! never needs a release build.

use std::process::Command;

use crate::host::{discover, host_json, repo};

/// One central-directory entry of a zip file.
#[derive(Debug)]
struct Entry {
    name: String,
    /// Unix mode from the high 16 bits of the external attributes.
    mode: u32,
}

fn u16_at(b: &[u8], i: usize) -> usize {
    usize::from(u16::from_le_bytes([b[i], b[i + 1]]))
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Reads the central directory (APPNOTE 4.3.12, 4.3.16) — no zip library,
/// so the check does not share code with the packer.
fn entries(zip: &[u8]) -> Vec<Entry> {
    let eocd = (0..=zip.len().saturating_sub(22))
        .rev()
        .find(|&i| u32_at(zip, i) == 0x0605_4b50)
        .expect("end of central directory");
    let count = u16_at(zip, eocd + 10);
    let mut at = u32_at(zip, eocd + 16) as usize;
    let mut out = Vec::new();
    for _ in 0..count {
        assert_eq!(u32_at(zip, at), 0x0201_4b50, "central directory header");
        let made_by_os = zip[at + 5];
        let name_len = u16_at(zip, at + 28);
        let extra_len = u16_at(zip, at + 30);
        let comment_len = u16_at(zip, at + 32);
        let external = u32_at(zip, at + 38);
        let name =
            String::from_utf8(zip[at + 46..at + 46 + name_len].to_vec()).expect("utf-8 name");
        assert_eq!(
            made_by_os, 3,
            "{name}: made on unix, so the mode bits are honoured"
        );
        out.push(Entry {
            name,
            mode: external >> 16,
        });
        at += 46 + name_len + extra_len + comment_len;
    }
    out
}

#[test]
fn the_package_is_flat_with_an_executable_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("stand-in");
    std::fs::write(&fake, b"#!/bin/sh\necho stand-in\n").expect("write");
    let out = dir.path().join("package.zip");
    let status = Command::new(repo().join("scripts/package"))
        .arg("--binary")
        .arg(&fake)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("run scripts/package");
    assert!(status.success());
    let zip = std::fs::read(&out).expect("zip");
    let entries = entries(&zip);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();

    let exe = host_json()["customHandler"]["description"]["defaultExecutablePath"]
        .as_str()
        .expect("path")
        .to_owned();
    let bin = entries
        .iter()
        .find(|e| e.name == exe)
        .unwrap_or_else(|| panic!("{exe} at the root: {names:?}"));
    assert_eq!(
        bin.mode & 0o777,
        0o755,
        "exec bit set (functions-protocol §2.3)"
    );
    assert_eq!(bin.mode & 0o170_000, 0o100_000, "a regular file");
    assert!(names.contains(&"host.json"));

    let functions = discover(&repo().join("functions"));
    for f in &functions {
        let path = format!("{}/function.json", f.name);
        assert!(
            names.contains(&path.as_str()),
            "{path} flattened to the root: {names:?}"
        );
    }
    for name in &names {
        assert!(
            !name.starts_with("functions/") && !name.starts_with("functions.pending/"),
            "{name}: not flattened"
        );
        let top = name.split('/').next().unwrap_or_default();
        assert!(
            *name == exe || *name == "host.json" || functions.iter().any(|f| f.name == top),
            "{name}: unexpected entry"
        );
    }
    for pending in discover(&repo().join("functions.pending")) {
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with(&format!("{}/", pending.name))),
            "{} must not ship",
            pending.name
        );
    }
}

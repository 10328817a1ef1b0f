//! crates.io's sparse index protocol (RFC 2789, cargo's "Registry Index"
//! chapter): `config.json` at the index root, one file of JSON lines per
//! crate under its prefix path, and `.crate` downloads at the `dl`
//! template. The gateway's `config.json` points `dl` back through it; the
//! index files pass through as they are (their `cksum` is what downloads
//! are checked against).

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::artifact::{Artifact, Declared};
use crate::package::{Ecosystem, Package};

/// The index path of crate `name`: `1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd…`
/// (lowercased).
pub fn index_path(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    match n.len() {
        1 => format!("1/{n}"),
        2 => format!("2/{n}"),
        3 => format!("3/{}/{n}", &n[..1]),
        _ => format!("{}/{}/{n}", &n[..2], &n[2..4]),
    }
}

/// The gateway's own `config.json`.
pub fn config(self_base: &str) -> Value {
    serde_json::json!({ "dl": format!("{self_base}/cargo/dl") })
}

/// Where the upstream serves `name` `version`, from its `config.json`'s
/// `dl` (with cargo's `{crate}`, `{version}`, `{prefix}`, `{lowerprefix}`
/// and `{sha256-checksum}` markers, or none, in which case
/// `/{crate}/{version}/download` is appended).
pub fn download_url(dl: &str, name: &str, version: &str, cksum: &str) -> String {
    let markers = ["{crate}", "{version}", "{prefix}", "{lowerprefix}", "{sha256-checksum}"];
    if !markers.iter().any(|m| dl.contains(m)) {
        return format!("{}/{name}/{version}/download", dl.trim_end_matches('/'));
    }
    let prefix = index_path(name);
    let prefix = prefix.rsplit_once('/').map_or("", |(p, _)| p);
    let orig_prefix = match name.len() {
        1 => "1".to_owned(),
        2 => "2".to_owned(),
        3 => format!("3/{}", &name[..1]),
        _ => format!("{}/{}", &name[..2], &name[2..4]),
    };
    dl.replace("{crate}", name)
        .replace("{version}", version)
        .replace("{prefix}", &orig_prefix)
        .replace("{lowerprefix}", prefix)
        .replace("{sha256-checksum}", cksum)
}

/// The index line of `version` in index file `text`.
pub fn line_of(text: &str, version: &str) -> Option<Value> {
    text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find(|v| v.get("vers").and_then(Value::as_str) == Some(version))
}

/// The artifact of `name` `version`, from its index file `text` and the
/// upstream's `dl` template.
pub fn artifact(text: &str, dl: &str, name: &str, version: &str) -> Option<Artifact> {
    let line = line_of(text, version)?;
    let cksum = line.get("cksum")?.as_str()?.to_owned();
    let name = line.get("name").and_then(Value::as_str).unwrap_or(name).to_owned();
    Some(Artifact {
        url: download_url(dl, &name, version, &cksum),
        file: format!("{name}-{version}.crate"),
        package: Package { ecosystem: Ecosystem::Cargo, name, version: version.to_owned() },
        declared: Some(Declared::Sha256Hex(cksum)),
        // `pubtime` (RFC 3339) is in index lines written since 2025.
        published: line.get("pubtime").and_then(Value::as_str).and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()),
        install_scripts: Vec::new(),
        provenance_url: None,
        content_type: "application/x-tar",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_templates() {
        assert_eq!(index_path("a"), "1/a");
        assert_eq!(index_path("ab"), "2/ab");
        assert_eq!(index_path("abc"), "3/a/abc");
        assert_eq!(index_path("Serde"), "se/rd/serde");
        assert_eq!(download_url("https://dl.example/crates", "serde", "1.0.0", "x"), "https://dl.example/crates/serde/1.0.0/download");
        assert_eq!(
            download_url("https://dl.example/{lowerprefix}/{crate}-{version}.crate", "Serde", "1.0.0", "x"),
            "https://dl.example/se/rd/Serde-1.0.0.crate"
        );
        let text = "{\"name\":\"tiny\",\"vers\":\"0.1.0\",\"deps\":[],\"cksum\":\"ab\",\"features\":{},\"yanked\":false}\n{\"name\":\"tiny\",\"vers\":\"0.2.0\",\"deps\":[],\"cksum\":\"cd\",\"features\":{},\"yanked\":false,\"pubtime\":\"2025-01-02T03:04:05Z\"}\n";
        let a = artifact(text, "http://up/dl", "tiny", "0.2.0").unwrap();
        assert_eq!(a.declared, Some(Declared::Sha256Hex("cd".into())));
        assert_eq!(a.url, "http://up/dl/tiny/0.2.0/download");
        assert!(a.published.is_some());
        assert!(artifact(text, "http://up/dl", "tiny", "0.3.0").is_none());
    }
}

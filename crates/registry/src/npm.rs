//! npm's registry protocol: packuments (`GET /{name}`, scoped names as
//! `@scope%2fname`) and tarballs (`dist.tarball`). The gateway serves the
//! full packument (the `application/json` form, which has the `time` of
//! each version that the abbreviated form lacks), with every tarball URL
//! pointing back through it.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::artifact::{Artifact, Declared};
use crate::package::{Ecosystem, Package};

/// npm's lifecycle scripts that run on `npm install`.
pub const INSTALL_SCRIPTS: [&str; 3] = ["preinstall", "install", "postinstall"];

/// The upstream packument URL of `name` under registry `base`.
pub fn packument_url(base: &str, name: &str) -> String {
    format!("{base}/{}", name.replacen('/', "%2f", 1))
}

/// Where a tarball is served by the gateway at `self_base`.
pub fn tarball_path(self_base: &str, name: &str, file: &str) -> String {
    format!("{self_base}/npm/{name}/-/{file}")
}

fn basename(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// Points every `versions.*.dist.tarball` of `doc` at the gateway.
pub fn rewrite(doc: &mut Value, name: &str, self_base: &str) {
    let Some(versions) = doc.get_mut("versions").and_then(Value::as_object_mut) else { return };
    for v in versions.values_mut() {
        if let Some(t) = v.pointer_mut("/dist/tarball") {
            if let Some(url) = t.as_str() {
                *t = Value::String(tarball_path(self_base, name, basename(url)));
            }
        }
    }
}

/// The artifact named `file` in packument `doc` of package `name`.
pub fn artifact(doc: &Value, name: &str, file: &str) -> Option<Artifact> {
    let versions = doc.get("versions")?.as_object()?;
    let (version, v) = versions.iter().find(|(_, v)| v.pointer("/dist/tarball").and_then(Value::as_str).is_some_and(|t| basename(t) == file))?;
    let url = v.pointer("/dist/tarball")?.as_str()?.to_owned();
    let declared = match (v.pointer("/dist/integrity").and_then(Value::as_str), v.pointer("/dist/shasum").and_then(Value::as_str)) {
        (Some(i), _) => Some(Declared::Sri(i.to_owned())),
        (None, Some(s)) => Some(Declared::Sha1Hex(s.to_owned())),
        (None, None) => None,
    };
    let published = doc
        .pointer(&format!("/time/{}", version.replace('~', "~0").replace('/', "~1")))
        .and_then(Value::as_str)
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
    let scripts = v.get("scripts").and_then(Value::as_object);
    let install_scripts = INSTALL_SCRIPTS.iter().filter(|s| scripts.is_some_and(|m| m.contains_key(**s))).map(|s| (*s).to_owned()).collect();
    Some(Artifact {
        package: Package { ecosystem: Ecosystem::Npm, name: name.to_owned(), version: version.clone() },
        file: file.to_owned(),
        url,
        declared,
        published,
        install_scripts,
        provenance_url: v.pointer("/dist/attestations/url").and_then(Value::as_str).map(str::to_owned),
        content_type: "application/octet-stream",
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rewrite_and_find() {
        let mut doc = json!({"name":"@s/x","versions":{"1.0.0":{"dist":{"tarball":"https://up.example/@s/x/-/x-1.0.0.tgz","integrity":"sha512-AAAA","shasum":"00"},
            "scripts":{"postinstall":"node evil.js","test":"x"}}},"time":{"1.0.0":"2020-01-01T00:00:00.000Z"}});
        let a = artifact(&doc, "@s/x", "x-1.0.0.tgz").unwrap();
        assert_eq!(a.url, "https://up.example/@s/x/-/x-1.0.0.tgz");
        assert_eq!(a.declared, Some(Declared::Sri("sha512-AAAA".into())));
        assert_eq!(a.install_scripts, vec!["postinstall".to_owned()]);
        assert_eq!(a.published.unwrap().year(), 2020);
        rewrite(&mut doc, "@s/x", "http://127.0.0.1:1");
        assert_eq!(doc.pointer("/versions/1.0.0/dist/tarball").unwrap(), "http://127.0.0.1:1/npm/@s/x/-/x-1.0.0.tgz");
        assert!(artifact(&doc, "@s/x", "x-2.0.0.tgz").is_none());
        assert_eq!(packument_url("http://r", "@s/x"), "http://r/@s%2fx");
    }
}

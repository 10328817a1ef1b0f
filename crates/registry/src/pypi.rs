//! PyPI's simple repository API: project pages in the JSON form of PEP 691
//! (`application/vnd.pypi.simple.v1+json`), rendered as PEP 503 HTML for
//! clients that ask only for HTML, and files. File URLs point back through
//! the gateway; the PEP 658 metadata keys are dropped, so clients fetch
//! the distribution itself, which is what gets checked.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::artifact::{Artifact, Declared};
use crate::package::{Ecosystem, Package};

/// The PEP 691 JSON content type.
pub const JSON_V1: &str = "application/vnd.pypi.simple.v1+json";

/// Keys of a file entry that would send a client elsewhere (PEP 658/714 metadata).
const METADATA_KEYS: [&str; 3] = ["core-metadata", "dist-info-metadata", "data-dist-info-metadata"];

/// Where [`resolve`] keeps a file's absolute upstream URL.
const UPSTREAM_KEY: &str = "zkaudit-upstream-url";

/// The upstream project page of normalised name `project` under `base`.
pub fn page_url(base: &str, project: &str) -> String {
    format!("{base}/{project}/")
}

/// Records each file's absolute upstream URL (relative URLs resolved
/// against `page_url`) under a key of the gateway's own, once, when the
/// page is fetched.
pub fn resolve(doc: &mut Value, page_url: &str) {
    let base = url::Url::parse(page_url).ok();
    let Some(files) = doc.get_mut("files").and_then(Value::as_array_mut) else { return };
    for f in files.iter_mut().filter_map(Value::as_object_mut) {
        if let Some(u) = f.get("url").and_then(Value::as_str) {
            let absolute = base.as_ref().and_then(|b| b.join(u).ok()).map_or_else(|| u.to_owned(), |u| u.to_string());
            f.insert(UPSTREAM_KEY.into(), absolute.into());
        }
    }
}

/// The page as a client of the gateway at `self_base` gets it: each
/// file's URL points through the gateway, and the PEP 658 metadata keys
/// and the gateway's own key are gone.
pub fn for_client(doc: &Value, project: &str, self_base: &str) -> Value {
    let mut d = doc.clone();
    if let Some(files) = d.get_mut("files").and_then(Value::as_array_mut) {
        for f in files.iter_mut().filter_map(Value::as_object_mut) {
            for k in METADATA_KEYS.iter().chain([&UPSTREAM_KEY]) {
                f.remove(*k);
            }
            if let Some(name) = f.get("filename").and_then(Value::as_str).map(str::to_owned) {
                f.insert("url".into(), format!("{self_base}/pypi/files/{project}/{name}").into());
            }
        }
    }
    d
}

/// PEP 503 HTML for a page from [`for_client`], with `#sha256=` fragments and the
/// `data-requires-python` / `data-yanked` attributes.
pub fn html(doc: &Value, project: &str) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let mut out = format!(
        "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.1\"><title>Links for {0}</title></head><body><h1>Links for {0}</h1>\n",
        esc(project)
    );
    for f in doc.get("files").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let (Some(name), Some(url)) = (f.get("filename").and_then(Value::as_str), f.get("url").and_then(Value::as_str)) else { continue };
        let frag = f.pointer("/hashes/sha256").and_then(Value::as_str).map(|h| format!("#sha256={h}")).unwrap_or_default();
        let mut attrs = String::new();
        if let Some(rp) = f.get("requires-python").and_then(Value::as_str) {
            attrs.push_str(&format!(" data-requires-python=\"{}\"", esc(rp)));
        }
        match f.get("yanked") {
            Some(Value::String(r)) => attrs.push_str(&format!(" data-yanked=\"{}\"", esc(r))),
            Some(Value::Bool(true)) => attrs.push_str(" data-yanked=\"\""),
            _ => {}
        }
        out.push_str(&format!("<a href=\"{}{frag}\"{attrs}>{}</a><br/>\n", esc(url), esc(name)));
    }
    out.push_str("</body></html>\n");
    out
}

/// The version in a distribution file name: a wheel's second field
/// (PEP 427), or an sdist's text after the name (`name-1.0.tar.gz`).
pub fn version_of(file: &str) -> Option<String> {
    if let Some(stem) = file.strip_suffix(".whl") {
        return stem.split('-').nth(1).map(str::to_owned);
    }
    let stem = [".tar.gz", ".zip", ".tar.bz2", ".tgz"].iter().find_map(|e| file.strip_suffix(e))?;
    stem.rsplit_once('-').map(|(_, v)| v.to_owned())
}

/// The artifact named `file` on page `doc` of `project` (after [`resolve`]).
pub fn artifact(doc: &Value, project: &str, file: &str) -> Option<Artifact> {
    let files = doc.get("files")?.as_array()?;
    let f = files.iter().find(|f| f.get("filename").and_then(Value::as_str) == Some(file))?;
    let url = f.get(UPSTREAM_KEY)?.as_str()?.to_owned();
    let version = version_of(file)?;
    Some(Artifact {
        package: Package { ecosystem: Ecosystem::Pypi, name: project.to_owned(), version },
        file: file.to_owned(),
        url,
        declared: f.pointer("/hashes/sha256").and_then(Value::as_str).map(|h| Declared::Sha256Hex(h.to_owned())),
        published: f.get("upload-time").and_then(Value::as_str).and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()),
        install_scripts: Vec::new(),
        provenance_url: f.get("provenance").and_then(Value::as_str).map(str::to_owned),
        content_type: "application/octet-stream",
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rewrite_find_and_render() {
        let mut doc = json!({"meta":{"api-version":"1.1"},"name":"six","files":[
            {"filename":"six-1.16.0-py2.py3-none-any.whl","url":"../../files/six-1.16.0-py2.py3-none-any.whl","hashes":{"sha256":"ab"},
             "upload-time":"2021-05-05T14:18:17.000000Z","core-metadata":{"sha256":"cd"},"requires-python":">=2.7"},
            {"filename":"six-1.16.0.tar.gz","url":"https://files.example/six-1.16.0.tar.gz","hashes":{"sha256":"ef"},"yanked":"broken"}]});
        resolve(&mut doc, "https://up.example/simple/six/");
        let a = artifact(&doc, "six", "six-1.16.0-py2.py3-none-any.whl").unwrap();
        assert_eq!(a.url, "https://up.example/files/six-1.16.0-py2.py3-none-any.whl");
        assert_eq!(a.package.version, "1.16.0");
        assert_eq!(a.declared, Some(Declared::Sha256Hex("ab".into())));
        assert!(a.published.is_some());
        let client = for_client(&doc, "six", "http://127.0.0.1:1");
        assert!(client.pointer("/files/0/core-metadata").is_none());
        assert!(client.pointer("/files/0/zkaudit-upstream-url").is_none());
        assert_eq!(client.pointer("/files/0/url").unwrap(), "http://127.0.0.1:1/pypi/files/six/six-1.16.0-py2.py3-none-any.whl");
        let h = html(&client, "six");
        assert!(h.contains("six-1.16.0.tar.gz#sha256=ef\" data-yanked=\"broken\""), "{h}");
        assert_eq!(version_of("six-1.16.0.tar.gz").as_deref(), Some("1.16.0"));
        assert_eq!(version_of("zope.interface-6.0-cp311-cp311-manylinux.whl").as_deref(), Some("6.0"));
    }
}

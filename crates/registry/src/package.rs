//! What a download is of: an ecosystem, a package name and a version, named
//! as a Package URL (purl spec, `pkg:npm/%40scope/name@1.0.0`,
//! `pkg:pypi/name@1.0`, `pkg:cargo/name@1.0.0`), and the name rules each
//! registry enforces, so that a request naming anything else is refused
//! before it reaches an upstream.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The package ecosystems the gateway serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    /// npm (packuments and tarballs).
    Npm,
    /// PyPI (the simple API, PEP 503 / PEP 691, and files).
    Pypi,
    /// crates.io (the sparse index, RFC 2789, and `.crate` files).
    Cargo,
}

impl Ecosystem {
    /// All of them, in the order of the gateway's path prefixes.
    pub const ALL: [Ecosystem; 3] = [Ecosystem::Npm, Ecosystem::Pypi, Ecosystem::Cargo];

    /// The purl type, which is also the gateway's path prefix (`/npm/`…).
    pub fn purl_type(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::Pypi => "pypi",
            Ecosystem::Cargo => "cargo",
        }
    }

    /// The ecosystem's name in OSV records (`affected[].package.ecosystem`).
    pub fn osv_name(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::Pypi => "PyPI",
            Ecosystem::Cargo => "crates.io",
        }
    }

    /// Checks a package name against the registry's rules, so traversal
    /// (`..`, `/`, `%2e`), control characters and absurd lengths never reach
    /// an upstream URL.
    ///
    /// # Errors
    /// A sentence saying what is wrong with `name`.
    pub fn check_name(self, name: &str) -> Result<(), String> {
        let bad = |why: &str| Err(format!("{name:?} is not a valid {} package name: {why}", self.purl_type()));
        match self {
            Ecosystem::Npm => {
                // npm's validate-npm-package-name: at most 214 characters,
                // URL-safe, no leading dot or underscore; a scope is
                // `@scope/name` with the same rules on each part.
                if name.is_empty() || name.len() > 214 {
                    return bad("it must have 1 to 214 characters");
                }
                let parts: Vec<&str> = match name.strip_prefix('@') {
                    Some(rest) => match rest.split_once('/') {
                        Some((scope, n)) => vec![scope, n],
                        None => return bad("a scoped name is @scope/name"),
                    },
                    None => vec![name],
                };
                for p in parts {
                    if p.is_empty() || p.starts_with('.') || p.starts_with('_') {
                        return bad("a part is empty or starts with . or _");
                    }
                    if !p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._~".contains(&b)) {
                        return bad("only lowercase letters, digits and - . _ ~ are allowed");
                    }
                }
                Ok(())
            }
            Ecosystem::Pypi => {
                // PEP 508 names: letters, digits, - _ . ; starting and ending
                // with a letter or digit.
                let ok = !name.is_empty()
                    && name.len() <= 200
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                    && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                    && name.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
                if ok {
                    Ok(())
                } else {
                    bad("PEP 508 allows letters, digits and - _ . between a letter or digit at each end, at most 200")
                }
            }
            Ecosystem::Cargo => {
                // crates.io: ASCII letters, digits, - and _, starting with a
                // letter, at most 64 characters.
                let ok = !name.is_empty()
                    && name.len() <= 64
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
                if ok {
                    Ok(())
                } else {
                    bad("crates.io allows letters, digits, - and _, starting with a letter, at most 64")
                }
            }
        }
    }

    /// The name as the registry compares it: PyPI's PEP 503 normalisation
    /// (lowercase, runs of `-_.` become `-`), crates.io's lowercase; npm
    /// names are already canonical.
    pub fn normalize(self, name: &str) -> String {
        match self {
            Ecosystem::Npm => name.to_owned(),
            Ecosystem::Cargo => name.to_ascii_lowercase(),
            Ecosystem::Pypi => {
                let mut out = String::with_capacity(name.len());
                let mut sep = false;
                for c in name.chars() {
                    if matches!(c, '-' | '_' | '.') {
                        sep = true;
                        continue;
                    }
                    if sep && !out.is_empty() {
                        out.push('-');
                    }
                    sep = false;
                    out.push(c.to_ascii_lowercase());
                }
                out
            }
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.purl_type())
    }
}

/// Checks a version string: 1 to 128 printable ASCII characters without
/// `/`, `\`, `..` or whitespace (no registry has longer or odder ones).
///
/// # Errors
/// A sentence saying what is wrong with `version`.
pub fn check_version(version: &str) -> Result<(), String> {
    let ok = !version.is_empty() && version.len() <= 128 && !version.contains("..") && version.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(format!("{version:?} is not a plausible version: 1 to 128 printable characters, no / \\ or .."))
    }
}

/// One released artifact's package: ecosystem, name (as the registry
/// spells it) and version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// The ecosystem.
    pub ecosystem: Ecosystem,
    /// The name, `@scope/name` for scoped npm packages.
    pub name: String,
    /// The version as the registry lists it.
    pub version: String,
}

impl Package {
    /// The Package URL (purl spec): the npm scope becomes the namespace,
    /// PyPI names are normalised as PEP 503 says.
    pub fn purl(&self) -> String {
        let (namespace, name) = match (self.ecosystem, self.name.strip_prefix('@').and_then(|r| r.split_once('/'))) {
            (Ecosystem::Npm, Some((scope, n))) => (Some(format!("@{scope}")), n.to_owned()),
            (Ecosystem::Pypi, _) => (None, self.ecosystem.normalize(&self.name)),
            _ => (None, self.name.clone()),
        };
        let built = packageurl::PackageUrl::new(self.ecosystem.purl_type(), name.as_str()).and_then(|mut p| {
            if let Some(ns) = namespace.as_deref() {
                p.with_namespace(ns)?;
            }
            p.with_version(self.version.as_str())?;
            Ok(p.to_string())
        });
        // The name and version were checked on the way in, which is all
        // the purl builder checks too; fall back to the plain form anyway.
        built.unwrap_or_else(|_| format!("pkg:{}/{}@{}", self.ecosystem.purl_type(), self.name, self.version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_follow_the_spec() {
        let p = |e, n: &str, v: &str| Package { ecosystem: e, name: n.into(), version: v.into() }.purl();
        assert_eq!(p(Ecosystem::Npm, "@angular/core", "12.3.1"), "pkg:npm/%40angular/core@12.3.1");
        assert_eq!(p(Ecosystem::Npm, "is-number", "7.0.0"), "pkg:npm/is-number@7.0.0");
        assert_eq!(p(Ecosystem::Pypi, "Django_Rest.framework", "3.0"), "pkg:pypi/django-rest-framework@3.0");
        assert_eq!(p(Ecosystem::Cargo, "serde_json", "1.0.1"), "pkg:cargo/serde_json@1.0.1");
    }

    #[test]
    fn names_that_could_escape_are_refused() {
        for (e, n) in [
            (Ecosystem::Npm, "../etc/passwd"),
            (Ecosystem::Npm, "a/b"),
            (Ecosystem::Npm, "%2e%2e"),
            (Ecosystem::Npm, "@scope"),
            (Ecosystem::Npm, "Upper"),
            (Ecosystem::Pypi, "-six"),
            (Ecosystem::Pypi, "six/.."),
            (Ecosystem::Cargo, "1abc"),
            (Ecosystem::Cargo, &"a".repeat(65)),
        ] {
            assert!(e.check_name(n).is_err(), "{e} {n}");
        }
        for (e, n) in [(Ecosystem::Npm, "@types/node"), (Ecosystem::Npm, "is-number"), (Ecosystem::Pypi, "zope.interface"), (Ecosystem::Cargo, "serde_json")] {
            assert!(e.check_name(n).is_ok(), "{e} {n}");
        }
        assert!(check_version("1.0.0").is_ok());
        assert!(check_version("../1").is_err());
        assert!(check_version(&"9".repeat(129)).is_err());
    }

    #[test]
    fn pep503_normalisation() {
        assert_eq!(Ecosystem::Pypi.normalize("Friendly-Bard"), "friendly-bard");
        assert_eq!(Ecosystem::Pypi.normalize("FRIENDLY__.bard"), "friendly-bard");
    }
}

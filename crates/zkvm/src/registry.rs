//! The program registry: which guest image IDs a verifier accepts.
//!
//! The embedded default lists the guest built into this binary, with the image
//! ID computed at build time. An optional registry file adds programs and
//! deprecates old ones. It is a C2SP signed note whose text is the JSON
//! document `{"programs":[…]}` plus a newline, signed with Ed25519; a file is
//! only used after its signature checks against the verifier key the user
//! names. File entries override embedded ones with the same image ID, so a
//! signed file can deprecate the embedded program.

use std::path::Path;

use serde::{Deserialize, Serialize};
use zkaudit_note::{Note, SigningKey, VerifierKey};

use crate::guest;

/// One guest program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProgramEntry {
    /// RISC Zero image ID, 64 lowercase hex digits.
    pub image_id: String,
    /// Program version (semver).
    pub version: String,
    /// What the program supports (`plan-ir/1.0`, ...).
    pub features: Vec<String>,
    /// Release date, `YYYY-MM-DD`.
    pub release_date: String,
    /// Whether receipts of this program are refused.
    #[serde(default)]
    pub deprecated: bool,
    /// Why it was deprecated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// TEE measurements of builds of this program approved to run as a
    /// prover (SGX `MRENCLAVE`, TDX `MRTD`, SEV-SNP `MEASUREMENT`;
    /// lowercase hex).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tee_measurements: Vec<String>,
}

/// Where an entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Built into this binary.
    Embedded,
    /// From the signed registry file.
    File,
}

/// Registry errors.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a validly signed note.
    #[error("{path}: signature check failed: {source}")]
    Signature {
        /// The file.
        path: String,
        /// The cause.
        source: zkaudit_note::NoteError,
    },
    /// The note text is not a registry document.
    #[error("{path}: not a registry document: {message}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// An entry is malformed or an operation does not apply.
    #[error("{0}")]
    Entry(String),
}

/// Why a program is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The image ID is in no registry.
    #[error("unknown image ID {0}: it is not in the program registry")]
    Unknown(String),
    /// The program is deprecated.
    #[error("image ID {image_id} (version {version}) is deprecated: {reason}")]
    Deprecated {
        /// The image ID.
        image_id: String,
        /// Its version.
        version: String,
        /// The recorded reason.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    programs: Vec<ProgramEntry>,
}

/// The merged registry: embedded entries, then the file's.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    entries: Vec<(ProgramEntry, Origin)>,
}

/// The entry for the guest built into this binary.
pub fn embedded_entry() -> ProgramEntry {
    ProgramEntry {
        image_id: guest::GUEST_IMAGE_ID.into(),
        version: guest::GUEST_VERSION.into(),
        features: guest::GUEST_FEATURES.iter().map(|f| (*f).into()).collect(),
        release_date: guest::GUEST_RELEASE_DATE.into(),
        deprecated: false,
        reason: None,
        tee_measurements: Vec::new(),
    }
}

fn check_entry(e: &ProgramEntry) -> Result<(), String> {
    if e.image_id.len() != 64 || !e.image_id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!("image ID `{}` is not 64 lowercase hex digits", e.image_id));
    }
    if zkaudit_plan::value::parse_iso_date(&e.release_date).is_none() {
        return Err(format!("release date `{}` is not YYYY-MM-DD", e.release_date));
    }
    if e.version.is_empty() {
        return Err("empty version".into());
    }
    if let Some(m) = e.tee_measurements.iter().find(|m| !matches!(m.len(), 64 | 96) || !m.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))) {
        return Err(format!("TEE measurement `{m}` is not 32 or 48 bytes of lowercase hex"));
    }
    if e.deprecated && e.reason.as_deref().unwrap_or("").is_empty() {
        return Err(format!("deprecated program {} needs a reason", e.image_id));
    }
    Ok(())
}

impl Registry {
    /// The embedded default: this binary's guest.
    pub fn embedded() -> Registry {
        Registry { entries: vec![(embedded_entry(), Origin::Embedded)] }
    }

    /// The embedded default merged with a signed registry file.
    ///
    /// # Errors
    /// An unreadable file, a bad signature or a malformed document.
    pub fn with_file(path: &Path, vkey: &VerifierKey) -> Result<Registry, RegistryError> {
        let mut r = Registry::embedded();
        for e in read_file(path, vkey)? {
            r.put(e, Origin::File);
        }
        Ok(r)
    }

    fn put(&mut self, e: ProgramEntry, origin: Origin) {
        match self.entries.iter_mut().find(|(x, _)| x.image_id == e.image_id) {
            Some(slot) => *slot = (e, origin),
            None => self.entries.push((e, origin)),
        }
    }

    /// All entries with their origin.
    pub fn entries(&self) -> &[(ProgramEntry, Origin)] {
        &self.entries
    }

    /// The entry for `image_id`, if any.
    pub fn get(&self, image_id: &str) -> Option<&ProgramEntry> {
        self.entries.iter().map(|(e, _)| e).find(|e| e.image_id == image_id)
    }

    /// The TEE measurements approved by programs that are not deprecated.
    pub fn approved_measurements(&self) -> Vec<String> {
        self.entries.iter().filter(|(e, _)| !e.deprecated).flat_map(|(e, _)| e.tee_measurements.iter().cloned()).collect()
    }

    /// The entry for `image_id` if it is known and not deprecated.
    ///
    /// # Errors
    /// [`Rejection`] with the reason.
    pub fn allow(&self, image_id: &str) -> Result<&ProgramEntry, Rejection> {
        let e = self.get(image_id).ok_or_else(|| Rejection::Unknown(image_id.into()))?;
        if e.deprecated {
            return Err(Rejection::Deprecated { image_id: image_id.into(), version: e.version.clone(), reason: e.reason.clone().unwrap_or_default() });
        }
        Ok(e)
    }
}

/// Reads and checks a signed registry file, returning its entries.
///
/// # Errors
/// See [`Registry::with_file`].
pub fn read_file(path: &Path, vkey: &VerifierKey) -> Result<Vec<ProgramEntry>, RegistryError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| RegistryError::Io { path: p.clone(), source })?;
    let note = Note::parse(&bytes).map_err(|source| RegistryError::Signature { path: p.clone(), source })?;
    note.verify(vkey).map_err(|source| RegistryError::Signature { path: p.clone(), source })?;
    let doc: Document = serde_json::from_str(note.text()).map_err(|e| RegistryError::Format { path: p.clone(), message: e.to_string() })?;
    for (i, e) in doc.programs.iter().enumerate() {
        check_entry(e).map_err(|m| RegistryError::Format { path: p.clone(), message: format!("programs[{i}]: {m}") })?;
        if doc.programs[..i].iter().any(|x| x.image_id == e.image_id) {
            return Err(RegistryError::Format { path: p, message: format!("programs[{i}]: image ID {} listed twice", e.image_id) });
        }
    }
    Ok(doc.programs)
}

/// Signs `entries` with `key` and writes them to `path` atomically.
///
/// # Errors
/// An invalid entry, or the file cannot be written.
pub fn write_file(path: &Path, entries: &[ProgramEntry], key: &SigningKey) -> Result<(), RegistryError> {
    for e in entries {
        check_entry(e).map_err(RegistryError::Entry)?;
    }
    let doc = Document { programs: entries.to_vec() };
    let text = serde_json_canonicalizer::to_string(&doc).map_err(|e| RegistryError::Entry(e.to_string()))? + "\n";
    let note = Note::sign(&text, key).map_err(|e| RegistryError::Entry(e.to_string()))?;
    let p = path.display().to_string();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, note.to_bytes()).and_then(|()| std::fs::rename(&tmp, path)).map_err(|source| RegistryError::Io { path: p, source })
}

/// Adds `entry` to the signed file (creating it if absent) or replaces the
/// entry with the same image ID.
///
/// # Errors
/// A bad existing file, an invalid entry, or a write failure.
pub fn add(path: &Path, key: &SigningKey, entry: ProgramEntry) -> Result<(), RegistryError> {
    let mut entries = if path.exists() { read_file(path, &key.verifier())? } else { Vec::new() };
    match entries.iter_mut().find(|e| e.image_id == entry.image_id) {
        Some(e) => *e = entry,
        None => entries.push(entry),
    }
    write_file(path, &entries, key)
}

/// Marks `image_id` deprecated with `reason` in the signed file. A program
/// only known from the embedded registry is copied into the file first.
///
/// # Errors
/// An unknown image ID, a bad existing file, or a write failure.
pub fn deprecate(path: &Path, key: &SigningKey, image_id: &str, reason: &str) -> Result<(), RegistryError> {
    let mut entries = if path.exists() { read_file(path, &key.verifier())? } else { Vec::new() };
    if !entries.iter().any(|e| e.image_id == image_id) {
        let known = Registry::embedded().get(image_id).cloned();
        entries.push(known.ok_or_else(|| RegistryError::Entry(format!("unknown image ID {image_id}")))?);
    }
    for e in entries.iter_mut().filter(|e| e.image_id == image_id) {
        e.deprecated = true;
        e.reason = Some(reason.into());
    }
    write_file(path, &entries, key)
}

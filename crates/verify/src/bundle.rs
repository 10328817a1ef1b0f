//! Entry bundles: each entry a big-endian uint16 length, then its bytes
//! (c2sp.org/tlog-tiles §Log entries).

/// An entry bundle that does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The bundle ends inside entry `entry` (0-based within the bundle).
    #[error("truncated inside entry {entry} of the bundle")]
    Truncated {
        /// Position of the entry within the bundle.
        entry: usize,
    },
    /// Bytes remain after the expected number of entries.
    #[error("{extra} unexpected bytes after the last entry")]
    Trailing {
        /// Number of extra bytes.
        extra: usize,
    },
}

/// Appends one entry, length-prefixed, to a bundle buffer.
/// The caller guarantees `entry.len() <= 65535`.
pub fn push_entry(buf: &mut Vec<u8>, entry: &[u8]) {
    buf.extend_from_slice(&(entry.len() as u16).to_be_bytes());
    buf.extend_from_slice(entry);
}

/// Splits a bundle into exactly `count` entries, borrowing from `data`.
pub fn split_bundle(data: &[u8], count: usize) -> Result<Vec<&[u8]>, BundleError> {
    match split_bundle_prefix(data, count) {
        (entries, None) => Ok(entries),
        (_, Some(e)) => Err(e),
    }
}

/// Like [`split_bundle`], but also returns the entries that parsed before
/// the first error, so that fsck can tell which entry went wrong.
pub fn split_bundle_prefix(data: &[u8], count: usize) -> (Vec<&[u8]>, Option<BundleError>) {
    let mut out = Vec::with_capacity(count);
    let mut rest = data;
    for entry in 0..count {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return (out, Some(BundleError::Truncated { entry }));
        };
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return (out, Some(BundleError::Truncated { entry }));
        }
        let (e, tail) = tail.split_at(len);
        out.push(e);
        rest = tail;
    }
    let err = (!rest.is_empty()).then_some(BundleError::Trailing { extra: rest.len() });
    (out, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let mut b = Vec::new();
        push_entry(&mut b, b"abc");
        push_entry(&mut b, b"");
        push_entry(&mut b, &[7u8; 300]);
        let e = split_bundle(&b, 3).unwrap();
        assert_eq!(e, vec![&b"abc"[..], &b""[..], &[7u8; 300][..]]);
        assert_eq!(split_bundle(&b[..b.len() - 1], 3), Err(BundleError::Truncated { entry: 2 }));
        assert_eq!(split_bundle(&b, 2), Err(BundleError::Trailing { extra: 302 }));
        assert_eq!(split_bundle(&b[..1], 1), Err(BundleError::Truncated { entry: 0 }));
    }
}

//! The C2SP tlog-tiles directory layout.
//!
//! * hash tiles: `tile/<L>/<N>[.p/<W>]`, 256 hashes of tree height `8·L`;
//! * entry bundles: `tile/entries/<N>[.p/<W>]`;
//! * `<N>` in zero-padded three-digit groups, all but the last prefixed
//!   with `x` (`1234067` → `x001/x234/067`);
//! * `checkpoint` at the root.
//!
//! Paths are relative to the log directory and use `/`.

/// Hashes (or entries) in a full tile or bundle.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels covered by one tile (`256 = 2^8`).
pub const TILE_HEIGHT: u8 = 8;

/// Encodes a tile index as tlog-tiles path elements (`x001/x234/067`).
pub fn encode_index(n: u64) -> String {
    let digits = n.to_string();
    let pad = (3 - digits.len() % 3) % 3;
    let padded = format!("{}{digits}", "0".repeat(pad));
    let groups: Vec<&str> = padded.as_bytes().chunks(3).map(|c| std::str::from_utf8(c).unwrap_or("000")).collect();
    let last = groups.len() - 1;
    groups.iter().enumerate().map(|(i, g)| if i < last { format!("x{g}") } else { (*g).to_owned() }).collect::<Vec<_>>().join("/")
}

/// A tile or entry bundle of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    /// Tile level (`None` for entry bundles).
    pub level: Option<u8>,
    /// Tile index within its level.
    pub index: u64,
    /// Number of hashes or entries: 256 for a full tile, 1..=255 for a partial one.
    pub width: u16,
}

impl TileId {
    /// A hash tile at `level`.
    pub fn hashes(level: u8, index: u64, width: u16) -> Self {
        Self { level: Some(level), index, width }
    }

    /// An entry bundle.
    pub fn entries(index: u64, width: u16) -> Self {
        Self { level: None, index, width }
    }

    /// Whether this is a full (256-wide) tile.
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// Path relative to the log directory, e.g. `tile/0/x001/234.p/7`.
    pub fn path(&self) -> String {
        let level = match self.level {
            Some(l) => l.to_string(),
            None => "entries".to_owned(),
        };
        let mut p = format!("tile/{level}/{}", encode_index(self.index));
        if !self.is_full() {
            p.push_str(&format!(".p/{}", self.width));
        }
        p
    }

    /// Path of the full tile with the same level and index.
    pub fn full_path(&self) -> String {
        Self { width: TILE_WIDTH as u16, ..*self }.path()
    }

    /// The `<N>.p` directory that holds this tile's partial versions.
    pub fn partial_dir(&self) -> String {
        let (parent, name) = self.partial_dir_parts();
        format!("{parent}/{name}")
    }

    /// [`partial_dir`](Self::partial_dir) as its parent directory and its
    /// name: `("tile/0/x001", "234.p")`. Callers that look for many tiles'
    /// partials list each parent once: on ext4 every lookup of a missing
    /// name scans the whole directory, and most `<N>.p` never exist.
    pub fn partial_dir_parts(&self) -> (String, String) {
        let level = match self.level {
            Some(l) => l.to_string(),
            None => "entries".to_owned(),
        };
        let index = encode_index(self.index);
        match index.rsplit_once('/') {
            Some((dirs, last)) => (format!("tile/{level}/{dirs}"), format!("{last}.p")),
            None => (format!("tile/{level}"), format!("{index}.p")),
        }
    }
}

/// The names of the `<N>.p` directories in the tile directory `dir` (a
/// parent of [`TileId::partial_dir_parts`]), listed once; empty where
/// `dir` cannot be read.
pub(crate) fn partial_dirs_in(dir: &std::path::Path) -> std::collections::HashSet<std::ffi::OsString> {
    let names = std::fs::read_dir(dir).into_iter().flatten().filter_map(|e| Some(e.ok()?.file_name()));
    names.filter(|n| n.as_encoded_bytes().ends_with(b".p")).collect()
}

/// Number of stored hashes at tile `level` for a tree of `size` leaves:
/// the complete subtrees of height `8·level`.
pub fn hashes_at_level(size: u64, level: u8) -> u64 {
    size.checked_shr(u32::from(TILE_HEIGHT) * u32::from(level)).unwrap_or(0)
}

/// Every tile and entry bundle that a tree of `size` leaves consists of:
/// entry bundles first, then hash tiles level by level, in index order.
pub fn tiles_for_size(size: u64) -> Vec<TileId> {
    let mut out = Vec::new();
    let push = |out: &mut Vec<TileId>, count: u64, make: &dyn Fn(u64, u16) -> TileId| {
        for i in 0..count / TILE_WIDTH {
            out.push(make(i, TILE_WIDTH as u16));
        }
        if !count.is_multiple_of(TILE_WIDTH) {
            out.push(make(count / TILE_WIDTH, (count % TILE_WIDTH) as u16));
        }
    };
    push(&mut out, size, &|i, w| TileId::entries(i, w));
    let mut level = 0u8;
    loop {
        let n = hashes_at_level(size, level);
        if n == 0 {
            break;
        }
        push(&mut out, n, &|i, w| TileId::hashes(level, i, w));
        level += 1;
    }
    out
}

/// Files a complete subtree hash, as reported by
/// `CompactRange::append(…, visit)`, into the buffer of its tile level when
/// it is a stored hash (its height a multiple of 8). Returns the level whose
/// tile this hash completed; the caller takes the 256 hashes out.
pub(crate) fn collect_stored_hash(levels: &mut Vec<Vec<zkaudit_merkle::Hash>>, height: u8, hash: &zkaudit_merkle::Hash) -> Option<usize> {
    if !height.is_multiple_of(TILE_HEIGHT) {
        return None;
    }
    let level = usize::from(height / TILE_HEIGHT);
    if levels.len() <= level {
        levels.resize_with(level + 1, Vec::new);
    }
    levels[level].push(*hash);
    (levels[level].len() as u64 == TILE_WIDTH).then_some(level)
}

/// The tile at `level` holding stored hash number `n` (at height `8·level`),
/// as it exists in a tree of `size` leaves.
pub fn tile_for_hash(level: u8, n: u64, size: u64) -> TileId {
    let count = hashes_at_level(size, level);
    let index = n / TILE_WIDTH;
    let width = if index < count / TILE_WIDTH { TILE_WIDTH } else { count % TILE_WIDTH };
    TileId::hashes(level, index, width as u16)
}

/// The entry bundle holding entry `n` in a tree of `size` leaves.
pub fn bundle_for_entry(n: u64, size: u64) -> TileId {
    let index = n / TILE_WIDTH;
    let width = if index < size / TILE_WIDTH { TILE_WIDTH } else { size % TILE_WIDTH };
    TileId::entries(index, width as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_encoding() {
        assert_eq!(encode_index(0), "000");
        assert_eq!(encode_index(7), "007");
        assert_eq!(encode_index(999), "999");
        assert_eq!(encode_index(1000), "x001/000");
        assert_eq!(encode_index(1234067), "x001/x234/067");
        assert_eq!(TileId::hashes(1, 1234067, 8).path(), "tile/1/x001/x234/067.p/8");
        assert_eq!(TileId::entries(2, 256).path(), "tile/entries/002");
        assert_eq!(TileId::hashes(1, 1234067, 8).partial_dir(), "tile/1/x001/x234/067.p");
        assert_eq!(TileId::hashes(1, 1234067, 8).partial_dir_parts(), ("tile/1/x001/x234".into(), "067.p".into()));
        assert_eq!(TileId::entries(2, 7).partial_dir_parts(), ("tile/entries".into(), "002.p".into()));
    }

    #[test]
    fn paths_match_independent_implementation() {
        for &(level, index, width) in &[(0u8, 0u64, 256u16), (0, 5, 17), (1, 1234067, 8), (3, 999_999_999, 255), (2, 1000, 256)] {
            // tlog_tiles writes Go sumdb paths (`tile/8/<L>/…`, `data` for entries);
            // the index and width encoding is the same as C2SP tlog-tiles.
            let go = |is_data| tlog_tiles::Tile::new(8, level, index, u32::from(width), is_data).path().replacen("tile/8/", "tile/", 1);
            assert_eq!(TileId::hashes(level, index, width).path(), go(false));
            assert_eq!(TileId::entries(index, width).path(), go(true).replacen("/data/", "/entries/", 1));
        }
    }

    #[test]
    fn tiles_for_sizes() {
        assert!(tiles_for_size(0).is_empty());
        let t: Vec<String> = tiles_for_size(257).iter().map(TileId::path).collect();
        assert_eq!(t, ["tile/entries/000", "tile/entries/001.p/1", "tile/0/000", "tile/0/001.p/1", "tile/1/000.p/1"]);
        assert_eq!(tile_for_hash(0, 256, 257).path(), "tile/0/001.p/1");
        assert_eq!(tile_for_hash(0, 3, 257).path(), "tile/0/000");
    }
}

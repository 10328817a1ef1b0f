//! The page, its scripts, its style and the WebAssembly verifier, built
//! into the binary.

/// One file the dashboard serves.
#[derive(Clone, Copy, Debug)]
pub struct Asset {
    /// Its path below `/` (`index.html`, `assets/app.js`, …).
    pub path: &'static str,
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset { path: "index.html", content_type: "text/html; charset=utf-8", bytes: include_bytes!("../assets/index.html") },
    Asset { path: "assets/app.js", content_type: "text/javascript; charset=utf-8", bytes: include_bytes!("../assets/app.js") },
    Asset { path: "assets/verify.js", content_type: "text/javascript; charset=utf-8", bytes: include_bytes!("../assets/verify.js") },
    Asset { path: "assets/style.css", content_type: "text/css; charset=utf-8", bytes: include_bytes!("../assets/style.css") },
    Asset { path: "assets/verify.wasm", content_type: "application/wasm", bytes: include_bytes!(concat!(env!("OUT_DIR"), "/verify.wasm")) },
];

/// The asset at `path` (below `/`; `""` is `index.html`), if there is one.
pub fn asset(path: &str) -> Option<&'static Asset> {
    let path = if path.is_empty() { "index.html" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

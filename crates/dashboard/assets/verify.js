// The browser's verifier: zkaudit-verify compiled to WebAssembly
// (crates/verify-wasm). The checks are the Rust crate's; this file only
// moves bytes in and out of the module's memory.

let instance = null;

async function load() {
  if (!instance) {
    const bytes = await (await fetch('/assets/verify.wasm')).arrayBuffer();
    instance = (await WebAssembly.instantiate(bytes, {})).instance;
  }
  return instance.exports;
}

function hexBytes(hex) {
  if (!/^([0-9a-f]{2})*$/.test(hex)) throw new Error(`not hex: ${hex.slice(0, 16)}…`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
  return out;
}

// Verifies an event as the page fetched it.
// view: the server's /v1/dashboard/events/{i} answer (checkpoint note,
// audit path, root, tree size, bundle position); bundle: the entry bundle's
// bytes fetched from the tile itself; vkey: the verifier key text to trust.
// Returns {ok, treeSize, origin, keyName, keyId, root, leafHash, entry} or
// {ok: false, reason}.
export async function verifyEvent(view, bundle, vkey) {
  const w = await load();
  const enc = new TextEncoder();
  const inputs = [
    enc.encode(view.checkpoint),
    enc.encode(vkey),
    new Uint8Array(bundle),
    hexBytes(view.root_hash),
    hexBytes(view.hashes.join('')),
  ];
  const bufs = inputs.map((b) => {
    const len = Math.max(b.length, 1);
    const ptr = w.zk_alloc(len);
    new Uint8Array(w.memory.buffer, ptr, b.length).set(b);
    return { ptr, len, n: b.length };
  });
  try {
    const [note, key, bun, root, hashes] = bufs;
    const ok = w.zk_verify_entry(
      note.ptr, note.n, key.ptr, key.n, bun.ptr, bun.n,
      view.bundle.count, view.bundle.position,
      BigInt(view.leaf_index), BigInt(view.tree_size),
      root.ptr, hashes.ptr, hashes.n,
    );
    const text = new TextDecoder().decode(new Uint8Array(w.memory.buffer, w.zk_result_ptr(), w.zk_result_len()).slice());
    if (!ok) return { ok: false, reason: text.replace(/^fail\n/, '') };
    const lines = text.split('\n');
    return {
      ok: true,
      treeSize: Number(lines[1]),
      origin: lines[2],
      keyName: lines[3],
      keyId: lines[4],
      root: lines[5],
      leafHash: lines[6],
      entry: lines.slice(7).join('\n'),
    };
  } finally {
    for (const b of bufs) w.zk_free(b.ptr, b.len);
  }
}

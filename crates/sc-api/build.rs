//! Embeds the web app's built bundle (`web/dist`, committed) into the binary, so a fresh clone
//! serves the app with no Node.js. A small generated table of `include_bytes!` instead of a
//! crate: nothing to configure, the same bytes in debug and release builds (no reading from
//! disk at run time), and no dependency for what is a directory walk.

#[path = "src/etag.rs"]
mod etag;

use etag::fnv1a;
use std::{
    env, fs,
    path::{Path, PathBuf},
};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dist = manifest.join("../../web/dist");
    println!("cargo::rerun-if-changed={}", dist.display());
    println!("cargo::rerun-if-changed=src/etag.rs");
    let mut files = Vec::new();
    if dist.is_dir() {
        walk(&dist, &dist, &mut files);
    } else {
        // Without a bundle the server still runs: `/` then answers that the app is not built.
        println!(
            "cargo::warning=web/dist is missing: the web app is not embedded (cd web && npm ci && npm run build)"
        );
    }
    // Sorted: the generated table (and so the binary) does not depend on directory order.
    files.sort();
    let mut out = String::from(
        "/// `(path under /, contents, FNV-1a 64 hash)` of every file of web/dist, sorted by path.\n\
         pub(crate) static WEB_ASSETS: &[(&str, &[u8], u64)] = &[\n",
    );
    for (rel, abs) in &files {
        let bytes = fs::read(abs).expect("web/dist file is readable");
        out.push_str(&format!(
            "    ({:?}, include_bytes!({:?}), {:#x}),\n",
            format!("/{rel}"),
            abs.display().to_string(),
            fnv1a(&bytes)
        ));
    }
    out.push_str("];\n");
    let target = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("web_assets.rs");
    fs::write(target, out).expect("OUT_DIR is writable");
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    for entry in fs::read_dir(dir).expect("web/dist is readable") {
        let path = entry.expect("web/dist entry").path();
        if path.is_dir() {
            walk(root, &path, files);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let abs = fs::canonicalize(&path).expect("web/dist path resolves");
            files.push((rel, abs));
        }
    }
}

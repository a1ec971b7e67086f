//! Writes Ramp's CRDs to `crds/` and to the install kustomization's copy in `manifests/crds/`
//! (`cargo run --bin crdgen`), or to one directory given as the argument.

use std::path::PathBuf;

use anyhow::Context;

/// Where the CRDs live in the repository: `crds/` for `kubectl apply -f`, and a copy under `manifests/`
/// because kustomize loads no file from outside a kustomization's directory.
const DIRS: &[&str] = &["crds", "manifests/crds"];

fn main() -> anyhow::Result<()> {
    let dirs: Vec<PathBuf> = match std::env::args().nth(1) {
        Some(dir) => vec![PathBuf::from(dir)],
        None => DIRS.iter().map(PathBuf::from).collect(),
    };
    for dir in dirs {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for (file, crd) in ramp::api::crd::all() {
            let path = dir.join(file);
            let yaml = ramp::api::crd::to_yaml(&crd)?;
            std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}

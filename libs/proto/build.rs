//! Generates the gRPC code of proto/crm/v1 with a vendored protoc, so no system install
//! is needed, plus a descriptor set for server reflection.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: the build script is single-threaded; prost-build reads PROTOC from here.
    unsafe { env::set_var("PROTOC", protoc) };

    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "common",
        "events",
        "customer",
        "ingest",
        "segmentation",
        "search",
    ]
    .map(|name| root.join(format!("crm/v1/{name}.proto")));
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    tonic_prost_build::configure()
        // RPCs that later issues fill in answer UNIMPLEMENTED until then.
        .generate_default_stubs(true)
        .file_descriptor_set_path(out_dir.join("crm_descriptor.bin"))
        .compile_protos(&files, &[root])?;
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    Ok(())
}

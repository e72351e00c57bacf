//! Generates the public API (`proto/distcache/v1/*.proto`, package
//! `distcache.v1`) for both the client and the server side.
//!
//! protoc comes from `protoc-bin-vendored`, so a machine with only the Rust
//! toolchain can build. madsim-tonic-build writes both the real tonic code and
//! the simulated one; `tonic::include_proto!` picks the right file per build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let root = "../../proto";
    let files = [
        "../../proto/distcache/v1/cache.proto",
        "../../proto/distcache/v1/admin.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos_with_config(config, &files, &[root])?;
    Ok(())
}

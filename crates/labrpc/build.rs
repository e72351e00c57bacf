//! Generates the gRPC service from `proto/labrpc.proto`.
//!
//! protoc comes from `protoc-bin-vendored`, so a machine with only the Rust
//! toolchain can build. madsim-tonic-build writes both the real tonic code and
//! the simulated one; `tonic::include_proto!` picks the right file per build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Payloads are handed to bincode as they are: `bytes::Bytes` avoids a copy.
    config.bytes(["."]);
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos_with_config(config, &["proto/labrpc.proto"], &["proto"])?;
    Ok(())
}

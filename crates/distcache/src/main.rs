//! The `distcache` binary; see the crate docs and `distcache --help`.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// mimalloc rather than the system allocator: see docs/status.md
/// ("allocator") for the profile and the measured difference.
#[cfg(not(madsim))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,distcache=info"));
    // The log follows RUST_LOG; the OTLP layer sees request spans whatever
    // the log level, and only once `[tracing] otlp_endpoint` started it.
    let registry = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter),
    );
    #[cfg(not(madsim))]
    let registry = registry.with(distcache::otlp::layer());
    registry.init();
    let cli = distcache::cli::Cli::parse();
    distcache::cli::run(cli).await
}

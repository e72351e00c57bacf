//! A raw gRPC `Cache` client: requests sent as they are (no retries, no
//! session handling, no routing), to see a node's own answers.

use std::net::SocketAddr;

use distcache_client::Credentials;
use distcache_client::proto::cache_client::CacheClient;

pub type RawCache =
    CacheClient<tonic::codegen::InterceptedService<tonic::transport::Channel, Credentials>>;

/// A `Cache` client of the node at `addr`, authenticating as `user`.
pub async fn raw_cache(addr: SocketAddr, user: &str, password: &str) -> RawCache {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    CacheClient::with_interceptor(
        channel,
        Credentials::basic(user, password).expect("credentials"),
    )
}

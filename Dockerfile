# syntax=docker/dockerfile:1
# The distcache node image (deploy/README.md). Two stages: cargo builds the
# release binary in a Rust image; a slim Debian runs it as a non-root user.
#
#   docker build -t distcache:dev .        (or: podman build / buildah bud)
#   docker run --rm -p 50051:50051 -p 6379:6379 -p 8080:8080 distcache:dev demo
#
# deploy/image-steps.sh runs the same build steps without a container
# builder, so they are known to work where none runs.

ARG RUST_VERSION=1.88
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
# protoc comes from a crate (protoc-bin-vendored); nothing else to install.
# --locked: the build uses exactly the dependency versions the repository's
# tests ran with.
COPY Cargo.toml Cargo.lock rustfmt.toml clippy.toml ./
COPY crates crates
COPY proto proto
RUN cargo build --locked --release -p distcache \
 && install -D -m 0755 target/release/distcache /out/distcache

FROM debian:${DEBIAN_RELEASE}-slim AS run
# curl: the HEALTHCHECK. getent (libc-bin, in the base): the entrypoint
# resolves the [[nodes]] table's DNS names. The CA certificates are not
# pinned (DL3008): they should be the newest the release has.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl=7.88.* ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 distcache \
 && useradd --system --uid 10001 --gid distcache --home-dir /var/lib/distcache --shell /usr/sbin/nologin distcache \
 && install -d -o distcache -g distcache -m 0750 /var/lib/distcache /etc/distcache /run/distcache
COPY --from=build /out/distcache /usr/local/bin/distcache
COPY deploy/docker/entrypoint.sh /usr/local/bin/distcache-entrypoint
COPY deploy/docker/join.sh /usr/local/bin/distcache-join
COPY deploy/docker/single.toml /etc/distcache/node.toml

# Client ports: gRPC, RESP, HTTP (/livez, /readyz, /metrics). Peer ports:
# the shard controller's Raft and the data group's Raft.
EXPOSE 50051 6379 8080 7001 7101
VOLUME ["/var/lib/distcache"]
ENV DISTCACHE_CONFIG=/etc/distcache/node.toml \
    DISTCACHE_HTTP_ADDR_FOR_HEALTHCHECK=127.0.0.1:8080 \
    RUST_LOG=info
USER 10001:10001
WORKDIR /var/lib/distcache
# A shell runs the probe: it expands the address from the environment.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/bin/sh", "-c", "curl --fail --silent --show-error --max-time 2 \"http://${DISTCACHE_HTTP_ADDR_FOR_HEALTHCHECK}/livez\" || exit 1"]
ENTRYPOINT ["/usr/local/bin/distcache-entrypoint"]
CMD ["node"]

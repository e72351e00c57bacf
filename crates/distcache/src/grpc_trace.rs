//! A caller's W3C `traceparent` on the gRPC API: a request that carries
//! one runs in that trace, so its `request` span and every span after it
//! (the forward hop, the owning node's server, Raft) take the caller's
//! trace id, as on the HTTP gateway. A missing or malformed header
//! changes nothing: the front end starts a trace of its own.
//!
//! It wraps each gRPC service rather than the server, so the router's type
//! stays the same with and without it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::Either;
use labrpc::trace::TraceContext;
use tonic::codegen::http;
use tonic::server::NamedService;

/// The W3C Trace Context header.
const TRACEPARENT: &str = "traceparent";

/// A gRPC service whose calls run in the caller's trace when they name one.
#[derive(Clone, Debug)]
pub struct TraceParent<S>(pub S);

impl<S: NamedService> NamedService for TraceParent<S> {
    const NAME: &'static str = S::NAME;
}

type Boxed<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for TraceParent<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<Boxed<S::Response, S::Error>, S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let trace = request
            .headers()
            .get(TRACEPARENT)
            .and_then(|value| value.to_str().ok())
            .and_then(TraceContext::parse_traceparent);
        let call = self.0.call(request);
        match trace {
            Some(context) => Either::Left(Box::pin(labrpc::trace::scope(context, call))),
            None => Either::Right(call),
        }
    }
}

//! Credentials on the HTTP and gRPC front ends: one `Authorization` value,
//! checked against the node's users (`resp::acl`, the same users RESP's
//! `AUTH` takes).
//!
//! - `Basic base64(user:password)`: any user;
//! - `Bearer <password>`: the `default` user (the `requirepass` password);
//! - nothing: the `default` user when it needs no password.
//!
//! HTTP sends it as the `Authorization` header, gRPC as the `authorization`
//! metadata entry. The RESP front end authenticates with `AUTH` instead.

use std::sync::Arc;

use ::resp::{Acl, User};
use base64::Engine;

/// Why a request is not authenticated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "authentication required: send basic credentials (user:password) or a bearer token (the default user's password)"
    )]
    Missing,
    #[error("malformed credentials: {0}")]
    Malformed(&'static str),
    #[error("invalid username-password pair or user is disabled")]
    Wrong,
}

/// The user an `Authorization` value (or its absence) authenticates as.
///
/// # Errors
///
/// See [`AuthError`]; one answer for an unknown user, a disabled one and a
/// wrong password, as Redis gives.
pub fn authenticate(acl: &Acl, authorization: Option<&[u8]>) -> Result<Arc<User>, AuthError> {
    let Some(value) = authorization else {
        return acl.initial_user().ok_or(AuthError::Missing);
    };
    let value = std::str::from_utf8(value).map_err(|_| AuthError::Malformed("not text"))?;
    let (scheme, credentials) = value
        .trim()
        .split_once(' ')
        .ok_or(AuthError::Malformed("expected `Basic ...` or `Bearer ...`"))?;
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .map_err(|_| AuthError::Malformed("basic credentials are not base64"))?;
        let colon = decoded
            .iter()
            .position(|&byte| byte == b':')
            .ok_or(AuthError::Malformed("basic credentials are user:password"))?;
        acl.authenticate(&decoded[..colon], &decoded[colon + 1..])
            .ok_or(AuthError::Wrong)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        acl.authenticate(::resp::acl::DEFAULT_USER.as_bytes(), credentials.as_bytes())
            .ok_or(AuthError::Wrong)
    } else {
        Err(AuthError::Malformed("expected `Basic ...` or `Bearer ...`"))
    }
}

/// The `Authorization` value of HTTP basic auth for `user` and `password`.
pub fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_bearer_and_none() {
        let mut acl = Acl::with_requirepass("pw");
        acl.apply_line("user app on >apw ~app:* +@all")
            .expect("valid");
        assert_eq!(authenticate(&acl, None), Err(AuthError::Missing));
        let app = authenticate(&acl, Some(basic("app", "apw").as_bytes())).expect("app");
        assert_eq!(app.name(), "app");
        let default = authenticate(&acl, Some(b"Bearer pw")).expect("default");
        assert_eq!(default.name(), "default");
        assert_eq!(
            authenticate(&acl, Some(basic("app", "pw").as_bytes())),
            Err(AuthError::Wrong)
        );
        assert_eq!(
            authenticate(&acl, Some(b"Bearer apw")),
            Err(AuthError::Wrong)
        );
        assert!(matches!(
            authenticate(&acl, Some(b"Basic !!!")),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            authenticate(&acl, Some(b"Digest x")),
            Err(AuthError::Malformed(_))
        ));
        // A password with a colon: only the first colon splits.
        acl.apply_line("user colon on >a:b +@all allkeys")
            .expect("valid");
        assert!(authenticate(&acl, Some(basic("colon", "a:b").as_bytes())).is_ok());
        // No password configured: no header is the default user.
        let open = Acl::default();
        assert_eq!(
            authenticate(&open, None).expect("default").name(),
            "default"
        );
    }
}

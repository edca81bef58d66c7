//! Request scope. SKELETON: the memo helper replaces the `todo!()` bodies; the public
//! signatures are the contract the `#[cache_in_request]` macro expands to.

use std::future::Future;

use serde::Serialize;

/// A request scope: memoized calls and request-scoped keys live until it ends.
#[derive(Debug, Default)]
pub struct RequestScope {}

impl RequestScope {
    /// A new, empty scope.
    #[must_use]
    pub fn new() -> Self {
        Self {}
    }

    /// Runs `fut` inside this scope; the scope is cleared when it ends.
    pub async fn run<F: Future>(self, fut: F) -> F::Output {
        fut.await
    }
}

/// Runs `fut` inside a new request scope.
pub async fn request_scope<F: Future>(fut: F) -> F::Output {
    RequestScope::new().run(fut).await
}

/// Runs `f` once per request scope for the same `function` and `args`; later calls in the
/// scope get a clone of the first result. Outside a scope, `f` simply runs.
pub async fn cache_in_request<A, T, F, Fut>(function: &str, args: &A, f: F) -> T
where
    A: Serialize + ?Sized,
    T: Clone + Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    let _ = (function, args);
    f().await
}

//! Support crate for the end-to-end tests in `tests/e2e`.

//! template tests.

//! exec tests.

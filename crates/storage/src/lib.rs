//! PerSQL storage.

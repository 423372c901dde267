//! PerSQL events.

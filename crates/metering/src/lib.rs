//! PerSQL metering.

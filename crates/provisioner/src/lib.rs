//! PerSQL provisioner.

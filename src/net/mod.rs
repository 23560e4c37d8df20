//! Blocking broker connections.

//! The store conformance suite: written once against the ports, run on every adapter.

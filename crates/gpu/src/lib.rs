//! The seqbridge GPU runtime.

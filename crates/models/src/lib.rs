//! seqbridge model families.

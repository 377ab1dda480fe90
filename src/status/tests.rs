//! Tests of the status view: rows from files and state, urgency order, rendering.
#![allow(clippy::unwrap_used)]

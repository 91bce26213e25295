//! End-to-end tests for hoist live in `tests/tests/`; this library holds nothing yet.

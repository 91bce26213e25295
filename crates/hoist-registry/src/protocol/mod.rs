//! Pure protocol logic: no sockets, no files; every function here is unit-tested on its own.

pub mod challenge;
pub mod chunk;
pub mod location;
pub mod response;

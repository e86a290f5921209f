//! The CLI's own file formats and the `palisade test` runner, shared by the command line and
//! the corpus conformance test so both take the same path.

pub mod produced;
pub mod resources;
pub mod runner;
pub mod scan;
pub mod strict;
pub mod testfile;

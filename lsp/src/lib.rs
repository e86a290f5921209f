//! The Palisade language server. This is the only crate that knows LSP types; it reuses the
//! compiler's front end and the stdlib's function table rather than parsing anything itself.

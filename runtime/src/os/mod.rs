//! What the host asks of the operating system, bounded against what it
//! finds there: files read only if regular and within a cap
//! ([`regular_file`]), and programs ended with everything they started
//! ([`process_tree`]), and the machine's time [`zone`]. Below everything
//! else: any module may use it.

pub mod process_tree;
pub mod regular_file;
pub mod zone;

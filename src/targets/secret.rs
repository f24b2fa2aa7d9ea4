//! The adapters' view of the secret scrubber: [`crate::secret`] holds it (the run, the recorder and the binary
//! use it too); the adapters scrub every message they produce with their own session's [`Secrets`].

pub use crate::secret::{MASK, Secrets, without_query};

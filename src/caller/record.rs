//! What one call produces, as the caller builds it: the records live in the leaf [`crate::model`] (measuring and
//! reporting both use them) and are re-exported here under their old path.

pub use crate::model::record::{CallRecord, Pacing, ToolCallLog, TurnKind, TurnRecord};
pub use crate::model::{METRICS, Metric};

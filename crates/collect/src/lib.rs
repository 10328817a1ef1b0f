//! The collector SDK: what every zkaudit collector (`zkaudit record`,
//! `zkaudit collect …`, the gateways) shares.
//!
//! It owns:
//!
//! * the common event shape ([`shape`]): ECS field names in `metadata`
//!   (`process.entity_id`, `file.path`, `destination.ip`, `event.action`,
//!   `event.outcome`, …) beside `ocsf.class_uid` / `ocsf.activity_id`, and
//!   content digests for `input` and `output`;
//! * gap events ([`shape::gap`]): what a collector could not see is itself
//!   recorded, with how much was missed;
//! * the sink ([`sink::Sink`]): batches of events, group-committed to a
//!   local ledger through `zkaudit-app`, or sent to a server as
//!   `POST /v1/log/entries` with an `Idempotency-Key` per batch, through a
//!   durable on-disk spool ([`spool::Spool`]) so that nothing is lost while
//!   the server is down and nothing is appended twice when it returns.
//!
//! It must not observe anything itself (that is each collector's own
//! crate), nor define the event format or the ledger (`zkaudit-event`,
//! `zkaudit-tlog`), nor speak HTTP as a server.

#![forbid(unsafe_code)]

pub mod shape;
pub mod sink;
pub mod spool;

pub use shape::{Observation, OcsfClass};
pub use sink::{Destination, Report, Sink, SinkError, SinkOptions};

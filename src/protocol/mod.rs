//! The WebSocket frame layer (RFC 6455 §5), owned by the crate: how a frame
//! is validated ([`read`]: bytes in → messages, control frames, faults) and
//! how a frame is written ([`write`]: masked client frames), side by side;
//! [`deflate`] is permessage-deflate (RFC 7692), used by both.
//! tungstenite supplies the upgrade's key and accept value and the
//! frame-code types (`OpCode`, `CloseCode`); it reads and writes no frames.

pub mod deflate;
pub mod read;
pub mod write;

pub use read::{Fault, Item, Payload, Reader};

//! permessage-deflate (RFC 7692), client side: the offer, the negotiation
//! of the server's answer (§7), and the per-message compressor and
//! decompressor (raw deflate, sync flush, the trailing `00 00 ff ff`
//! removed on the wire, §7.2).
//!
//! Memory: the compressor (about 320 KiB of RSS at window 15, made at the
//! first message to compress) and the decompressor (up to about 40 KiB,
//! made at the first compressed message) go with the connection.
//! Inflated output is bounded by the message limit: inflation stops there
//! (a decompression bomb costs at most the limit).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The extension's token.
pub const NAME: &str = "permessage-deflate";

/// What closes every message's deflate data on the wire (RFC 7692 §7.2.1).
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// Messages shorter than this go out uncompressed (RFC 7692 allows it per
/// message): below it the deflate header and sync-flush marker (about 6-10
/// bytes) eat most of what compression saves, for the CPU it costs.
pub const MIN_COMPRESSED: usize = 64;

/// The client's offer (`Sec-WebSocket-Extensions` of the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// `client_max_window_bits`: `None` not sent, `Some(0)` sent without a
    /// value ("I can use a smaller window"), `Some(9..=15)` with that value.
    pub client_max_window_bits: Option<u8>,
    /// `server_max_window_bits` (9..=15), if sent.
    pub server_max_window_bits: Option<u8>,
    pub client_no_context_takeover: bool,
    pub server_no_context_takeover: bool,
}

impl Default for Offer {
    /// `permessage-deflate; client_max_window_bits`, as browsers offer it.
    fn default() -> Self {
        Offer {
            client_max_window_bits: Some(0),
            server_max_window_bits: None,
            client_no_context_takeover: false,
            server_no_context_takeover: false,
        }
    }
}

impl Offer {
    /// The header value to send.
    pub fn header_value(&self) -> String {
        let mut v = NAME.to_string();
        match self.client_max_window_bits {
            None => {}
            Some(0) => v.push_str("; client_max_window_bits"),
            Some(b) => v.push_str(&format!("; client_max_window_bits={b}")),
        }
        if let Some(b) = self.server_max_window_bits {
            v.push_str(&format!("; server_max_window_bits={b}"));
        }
        if self.client_no_context_takeover {
            v.push_str("; client_no_context_takeover");
        }
        if self.server_no_context_takeover {
            v.push_str("; server_no_context_takeover");
        }
        v
    }
}

/// What both sides agreed (the server's answer to the offer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The window our compressor may use (8..=15).
    pub client_window: u8,
    /// The window the server's compressor uses (8..=15).
    pub server_window: u8,
    /// We reset our compressor after each message.
    pub client_no_context_takeover: bool,
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
}

/// Check the server's `permessage-deflate` element (`name; p; p=v ...`)
/// against the offer (RFC 7692 §7): Err(detail) for an answer the server may
/// not give.
pub fn negotiate(offer: &Offer, element: &str) -> Result<Agreed, String> {
    let mut agreed = Agreed {
        client_window: 15,
        server_window: 15,
        client_no_context_takeover: false,
        server_no_context_takeover: false,
    };
    let mut seen: Vec<&str> = Vec::new();
    for param in element.split(';').skip(1) {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (param.trim(), None),
        };
        let name_lc = name.to_ascii_lowercase();
        if seen.contains(&name_lc.as_str()) {
            return Err(format!("{NAME}: parameter {name} appears twice"));
        }
        let bits = |v: Option<&str>| -> Result<u8, String> {
            match v.map(|v| (v, v.parse::<u8>())) {
                Some((v, Ok(b))) if (8..=15).contains(&b) && !v.starts_with(['0', '+']) => Ok(b),
                Some((v, _)) => Err(format!("{NAME}: {name}={v} is not 8 to 15")),
                None => Err(format!("{NAME}: {name} needs a value")),
            }
        };
        let no_value = |v: Option<&str>| -> Result<(), String> {
            match v {
                None => Ok(()),
                Some(v) => Err(format!("{NAME}: {name} takes no value (got {v:?})")),
            }
        };
        match name_lc.as_str() {
            "server_no_context_takeover" => {
                no_value(value)?;
                agreed.server_no_context_takeover = true;
                seen.push("server_no_context_takeover");
            }
            "client_no_context_takeover" => {
                no_value(value)?;
                agreed.client_no_context_takeover = true;
                seen.push("client_no_context_takeover");
            }
            "server_max_window_bits" => {
                let b = bits(value)?;
                if let Some(max) = offer.server_max_window_bits {
                    if b > max {
                        return Err(format!(
                            "{NAME}: server_max_window_bits={b} is over the {max} offered"
                        ));
                    }
                }
                agreed.server_window = b;
                seen.push("server_max_window_bits");
            }
            "client_max_window_bits" => {
                let b = bits(value)?;
                match offer.client_max_window_bits {
                    None => {
                        return Err(format!(
                            "{NAME}: server sent client_max_window_bits, which was not offered"
                        ))
                    }
                    Some(max) if max != 0 && b > max => {
                        return Err(format!(
                            "{NAME}: client_max_window_bits={b} is over the {max} offered"
                        ))
                    }
                    _ => {}
                }
                agreed.client_window = b;
                seen.push("client_max_window_bits");
            }
            _ => return Err(format!("{NAME}: unknown parameter {name:?}")),
        }
    }
    // What the offer asked of the server, it must have accepted (§7.1.1.1,
    // §7.1.2.1): otherwise it should have declined the offer.
    if offer.server_no_context_takeover && !agreed.server_no_context_takeover {
        return Err(format!(
            "{NAME}: server accepted the offer without the server_no_context_takeover it asked for"
        ));
    }
    if offer.server_max_window_bits.is_some() && !seen.contains(&"server_max_window_bits") {
        return Err(format!(
            "{NAME}: server accepted the offer without the server_max_window_bits it asked for"
        ));
    }
    // Our own limits apply whatever the server said.
    if let Some(b) = offer.client_max_window_bits.filter(|&b| b != 0) {
        agreed.client_window = agreed.client_window.min(b);
    }
    agreed.client_no_context_takeover |= offer.client_no_context_takeover;
    Ok(agreed)
}

/// Compresses outgoing messages.
pub struct Deflater {
    c: Compress,
    reset_each: bool,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater").finish_non_exhaustive()
    }
}

impl Deflater {
    /// `None` where nothing may be compressed: a window of 8 was agreed,
    /// which zlib cannot produce (it silently uses 9), so every message goes
    /// out uncompressed, as RFC 7692 allows.
    pub fn new(agreed: &Agreed) -> Option<Deflater> {
        if agreed.client_window < 9 {
            return None;
        }
        Some(Deflater {
            c: Compress::new_with_window_bits(Compression::default(), false, agreed.client_window),
            reset_each: agreed.client_no_context_takeover,
        })
    }

    /// Append one message's compressed payload to `out` (without the
    /// trailing `00 00 ff ff`).
    pub fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        if payload.is_empty() {
            // zlib emits nothing for no input after a flush; an empty
            // message is one empty block (RFC 7692 §7.2.3.6).
            out.push(0x00);
            return;
        }
        let start = out.len();
        let mut input = payload;
        loop {
            out.reserve(input.len() / 2 + 64);
            let before = self.c.total_in();
            // Sync flush: everything out, byte-aligned, ending in the
            // empty stored block (00 00 ff ff).
            let r = self.c.compress_vec(input, out, FlushCompress::Sync);
            input = &input[(self.c.total_in() - before) as usize..];
            // Errors only on misuse (a buffer error means: more room).
            if r.is_err() || (input.is_empty() && out.len() < out.capacity()) {
                break;
            }
        }
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.reset_each {
            self.c.reset();
        }
    }
}

/// Why inflating stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InflateError {
    /// The output would pass the limit.
    OverLimit,
    /// Memory for output within the limit could not be had.
    OutOfMemory,
    /// Not a valid deflate stream.
    Corrupt(String),
}

/// Decompresses incoming messages, as their frames arrive.
pub struct Inflater {
    d: Decompress,
    reset_each: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

impl Inflater {
    /// Always a 15-bit window: it reads anything a smaller window wrote.
    pub fn new(agreed: &Agreed) -> Inflater {
        Inflater {
            d: Decompress::new_with_window_bits(false, 15),
            reset_each: agreed.server_no_context_takeover,
        }
    }

    /// Inflate `input` (part of a message's compressed payload) onto `out`,
    /// which may hold at most `limit` bytes.
    pub fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: u64,
    ) -> Result<(), InflateError> {
        loop {
            if out.len() == out.capacity() {
                if out.len() as u64 >= limit.saturating_add(1) {
                    return Err(InflateError::OverLimit);
                }
                super::reserve_within(out, out.len() + 1, limit)
                    .map_err(|_| InflateError::OutOfMemory)?;
            }
            let (in0, out0) = (self.d.total_in(), self.d.total_out());
            let status = self
                .d
                .decompress_vec(input, out, FlushDecompress::Sync)
                .map_err(|e| {
                    InflateError::Corrupt(format!("invalid compressed data in a message: {e}"))
                })?;
            input = &input[(self.d.total_in() - in0) as usize..];
            if out.len() as u64 > limit {
                return Err(InflateError::OverLimit);
            }
            let progress = self.d.total_in() > in0 || self.d.total_out() > out0;
            if status == Status::StreamEnd {
                // A final block: what follows starts a new stream, without
                // the old window.
                self.d.reset(false);
            }
            let room = out.len() < out.capacity();
            if room && (input.is_empty() || !progress) {
                return Ok(());
            }
        }
    }

    /// The message's last frame is in: inflate the tail that the sender
    /// removed (RFC 7692 §7.2.2), and forget the context if agreed.
    pub fn finish(&mut self, out: &mut Vec<u8>, limit: u64) -> Result<(), InflateError> {
        let r = self.inflate(&TAIL, out, limit);
        if self.reset_each {
            self.d.reset(false);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed() -> Agreed {
        negotiate(&Offer::default(), NAME).unwrap()
    }

    #[test]
    fn offers() {
        assert_eq!(
            Offer::default().header_value(),
            "permessage-deflate; client_max_window_bits"
        );
        let o = Offer {
            client_max_window_bits: None,
            server_max_window_bits: Some(10),
            client_no_context_takeover: true,
            server_no_context_takeover: true,
        };
        assert_eq!(
            o.header_value(),
            "permessage-deflate; server_max_window_bits=10; client_no_context_takeover; \
             server_no_context_takeover"
        );
    }

    #[test]
    fn negotiation_accepts_what_the_server_may_answer() {
        let o = Offer::default();
        let a = negotiate(&o, "permessage-deflate").unwrap();
        assert_eq!((a.client_window, a.server_window), (15, 15));
        let a = negotiate(
            &o,
            "permessage-deflate; client_max_window_bits=12; server_max_window_bits=10; \
             server_no_context_takeover; client_no_context_takeover",
        )
        .unwrap();
        assert_eq!(
            a,
            Agreed {
                client_window: 12,
                server_window: 10,
                client_no_context_takeover: true,
                server_no_context_takeover: true
            }
        );
        assert_eq!(
            negotiate(&o, "permessage-deflate; client_max_window_bits=\"8\"")
                .unwrap()
                .client_window,
            8
        );
        // Our own no-context-takeover applies whatever the answer.
        let o2 = Offer {
            client_no_context_takeover: true,
            ..Offer::default()
        };
        assert!(
            negotiate(&o2, "permessage-deflate")
                .unwrap()
                .client_no_context_takeover
        );
    }

    #[test]
    fn negotiation_refuses_what_the_server_may_not_answer() {
        let o = Offer::default();
        for (answer, why) in [
            ("permessage-deflate; foo", "unknown parameter"),
            (
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                "twice",
            ),
            (
                "permessage-deflate; server_max_window_bits=16",
                "not 8 to 15",
            ),
            (
                "permessage-deflate; server_max_window_bits=7",
                "not 8 to 15",
            ),
            (
                "permessage-deflate; server_max_window_bits=010",
                "not 8 to 15",
            ),
            (
                "permessage-deflate; server_max_window_bits",
                "needs a value",
            ),
            (
                "permessage-deflate; client_max_window_bits",
                "needs a value",
            ),
            (
                "permessage-deflate; client_no_context_takeover=1",
                "takes no value",
            ),
        ] {
            let e = negotiate(&o, answer).unwrap_err();
            assert!(e.contains(why), "{answer}: {e}");
        }
        let none = Offer {
            client_max_window_bits: None,
            ..Offer::default()
        };
        assert!(
            negotiate(&none, "permessage-deflate; client_max_window_bits=10")
                .unwrap_err()
                .contains("not offered")
        );
        let ten = Offer {
            client_max_window_bits: Some(10),
            server_max_window_bits: Some(10),
            server_no_context_takeover: true,
            ..Offer::default()
        };
        for (answer, why) in [
            (
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; \
                 client_max_window_bits=11",
                "over the 10 offered",
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
                "over the 10 offered",
            ),
            (
                "permessage-deflate; server_max_window_bits=9",
                "server_no_context_takeover",
            ),
            (
                "permessage-deflate; server_no_context_takeover",
                "server_max_window_bits",
            ),
        ] {
            let e = negotiate(&ten, answer).unwrap_err();
            assert!(e.contains(why), "{answer}: {e}");
        }
    }

    fn round_trip(a: &Agreed, messages: &[&[u8]]) {
        let mut d = Deflater::new(a).unwrap();
        let mut i = Inflater::new(a);
        for m in messages {
            let mut wire = Vec::new();
            d.compress(m, &mut wire);
            assert!(!wire.ends_with(&TAIL));
            // Inflated in pieces, as frames arrive.
            let mut out = Vec::new();
            for piece in wire.chunks(3) {
                i.inflate(piece, &mut out, 1 << 20).unwrap();
            }
            i.finish(&mut out, 1 << 20).unwrap();
            assert_eq!(&out, m);
        }
    }

    #[test]
    fn messages_round_trip_with_and_without_context_takeover() {
        let text = b"{\"type\":\"update\",\"id\":12345,\"values\":[1,2,3,4,5,6,7,8]}".repeat(20);
        let msgs: [&[u8]; 4] = [&text, b"", b"x", &text];
        round_trip(&agreed(), &msgs);
        for bits in 9..=15 {
            let a = Agreed {
                client_window: bits,
                server_window: 15,
                client_no_context_takeover: true,
                server_no_context_takeover: true,
            };
            round_trip(&a, &msgs);
        }
        // Context takeover makes the repeat smaller.
        let mut d = Deflater::new(&agreed()).unwrap();
        let (mut w1, mut w2) = (Vec::new(), Vec::new());
        d.compress(&text, &mut w1);
        d.compress(&text, &mut w2);
        assert!(w2.len() < w1.len() / 2, "{} vs {}", w2.len(), w1.len());
    }

    #[test]
    fn window_8_means_no_compression() {
        let a = Agreed {
            client_window: 8,
            ..agreed()
        };
        assert!(Deflater::new(&a).is_none());
    }

    #[test]
    fn inflation_stops_at_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        let mut wire = Vec::new();
        Deflater::new(&agreed())
            .unwrap()
            .compress(&zeros, &mut wire);
        assert!(wire.len() < 20_000, "{}", wire.len());
        let mut i = Inflater::new(&agreed());
        let mut out = Vec::new();
        assert_eq!(
            i.inflate(&wire, &mut out, 1 << 20),
            Err(InflateError::OverLimit)
        );
        assert!(out.capacity() <= (1 << 20) + 1, "{}", out.capacity());
        // Garbage is an error, not a panic.
        let mut i = Inflater::new(&agreed());
        let mut out = Vec::new();
        assert!(matches!(
            i.inflate(&[0xff; 16], &mut out, 1 << 20),
            Err(InflateError::Corrupt(_))
        ));
    }
}

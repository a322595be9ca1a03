//! How a frame is written: client frames (always masked, RFC 6455 §5.3),
//! appended whole to a buffer. The outbox ([`crate::outbox`]) frames every
//! outgoing message, ping, pong and close with [`frame`].

/// Append one frame, FIN set, with `opcode`, `payload` masked by `mask`;
/// RSV1 set if `compressed` (a permessage-deflate message).
pub fn frame(buf: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4], compressed: bool) {
    let len = payload.len();
    let mut head = [0u8; 14];
    head[0] = 0x80 | if compressed { 0x40 } else { 0 } | opcode;
    let n = match len {
        0..=125 => {
            head[1] = 0x80 | len as u8;
            2
        }
        126..=0xffff => {
            head[1] = 0x80 | 126;
            head[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            head[1] = 0x80 | 127;
            head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    };
    head[n..n + 4].copy_from_slice(&mask);
    buf.reserve(n + 4 + len);
    buf.extend_from_slice(&head[..n + 4]);
    let start = buf.len();
    buf.extend_from_slice(payload);
    apply_mask(&mut buf[start..], mask);
}

/// A close frame's payload: the code, then the reason (at most 123 bytes,
/// checked by the caller); empty for no code.
pub fn close_payload(code: Option<u16>, reason: &str) -> Vec<u8> {
    match code {
        None => Vec::new(),
        Some(code) => {
            let mut p = Vec::with_capacity(2 + reason.len());
            p.extend_from_slice(&code.to_be_bytes());
            p.extend_from_slice(reason.as_bytes());
            p
        }
    }
}

/// XOR `buf` with the 4-byte `mask`, eight bytes at a time.
fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let m = u32::from_ne_bytes(mask);
    let wide = u64::from(m) | (u64::from(m) << 32);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes(c.try_into().expect("8 bytes")) ^ wide;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_matches_the_bytewise_definition() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for len in 0..40 {
            let data: Vec<u8> = (0..len as u8).collect();
            let mut fast = data.clone();
            apply_mask(&mut fast, mask);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(fast, slow);
        }
    }

    #[test]
    fn close_payloads() {
        assert_eq!(close_payload(None, "x"), b"");
        assert_eq!(close_payload(Some(1000), "bye"), b"\x03\xe8bye");
    }
}

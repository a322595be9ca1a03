//! An in-memory stand-in for the library's transport: the peer's bytes go
//! through the same frame gate (`wsbridge::gate`) before tungstenite sees
//! them, in chunks whose sizes the fuzzer also picks.

use std::io::{self, Read, Write};

use wsbridge::gate::{Gate, Incident, Step};

pub struct FuzzStream<'a> {
    pub data: &'a [u8],
    pub pos: usize,
    pub chunks: &'a [u8],
    pub chunk_i: usize,
    /// How much of `data` has been made "available" so far.
    pub avail: usize,
    pub gate: Gate,
    pub incidents: Vec<Incident>,
    pub written: usize,
}

impl<'a> FuzzStream<'a> {
    pub fn new(data: &'a [u8], chunks: &'a [u8], max_frame: usize) -> Self {
        FuzzStream {
            data,
            pos: 0,
            chunks,
            chunk_i: 0,
            avail: 0,
            gate: Gate::new(max_frame),
            incidents: Vec::new(),
            written: 0,
        }
    }

    /// Make the next chunk of input available; false at the end.
    pub fn arrive(&mut self) -> bool {
        if self.avail >= self.data.len() {
            return false;
        }
        let c = self
            .chunks
            .get(self.chunk_i % self.chunks.len().max(1))
            .copied()
            .unwrap_or(255);
        self.chunk_i += 1;
        self.avail = (self.avail + 1 + c as usize * 7).min(self.data.len());
        true
    }

    pub fn eof(&self) -> bool {
        self.avail >= self.data.len()
    }

    /// The library's fast path (`Transport::take_clean_messages`): whole
    /// single-frame messages taken straight from the input, as (is text,
    /// payload), while tungstenite holds nothing.
    pub fn take_clean(&mut self) -> Vec<(bool, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            let input = &self.data[self.pos..self.avail];
            let Some((text, hlen, total)) = self.gate.clean_message(input) else {
                return out;
            };
            assert!(hlen <= total && total <= input.len(), "fast path overran");
            out.push((text, input[hlen..total].to_vec()));
            self.pos += total;
        }
    }
}

impl Read for FuzzStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let input = &self.data[self.pos..self.avail];
            if input.is_empty() {
                return if self.eof() {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            // The library skips tungstenite's read where `holds` says the
            // gate would hold the input back: it must agree with `next`.
            let held = self.gate.holds(input);
            let step = self.gate.next_run(input, buf.len());
            assert!(
                !held || step == Step::NeedMore,
                "holds() but the gate did not wait: {step:?}"
            );
            match step {
                Step::Pass(n) => {
                    assert!(
                        n <= input.len() && n <= buf.len(),
                        "gate passed more than it may"
                    );
                    buf[..n].copy_from_slice(&input[..n]);
                    // As the library does: text frames go on as binary.
                    for &at in self.gate.rewrites() {
                        assert!(at < n, "rewrite outside the passed bytes");
                        buf[at] = wsbridge::gate::as_binary(buf[at]);
                    }
                    self.pos += n;
                    return Ok(n);
                }
                Step::Drop { n, stop } => {
                    assert!(n <= input.len(), "gate dropped more than there is");
                    self.pos += n;
                    if stop {
                        if let Some(i) = self.gate.take_incident() {
                            self.incidents.push(i);
                        }
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                }
                Step::NeedMore => {
                    if self.eof() {
                        let n = input.len().min(buf.len());
                        buf[..n].copy_from_slice(&input[..n]);
                        self.pos += n;
                        return Ok(n);
                    }
                    return Err(io::ErrorKind::WouldBlock.into());
                }
            }
        }
    }
}

impl Write for FuzzStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

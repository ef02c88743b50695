//! The resize channel (4): terminal sizes as a stream of JSON objects.

use bytes::BytesMut;

use crate::runtime::TerminalSize;

/// Incremental decoder of the resize channel: a stream of JSON objects
/// (`{"Width":80,"Height":24}`), possibly split across or packed into frames, as Go's
/// `json.Decoder` reads it. Go matches field names case-insensitively, so do we.
#[derive(Debug, Default)]
pub struct ResizeDecoder {
    buf: BytesMut,
    failed: bool,
}

impl ResizeDecoder {
    /// Feed one frame's payload; returns the complete sizes it finished. After a malformed
    /// object the decoder stops, as upstream's `handleResizeEvents` loop does.
    pub fn push(&mut self, data: &[u8]) -> Vec<TerminalSize> {
        if self.failed {
            return Vec::new();
        }
        self.buf.extend_from_slice(data);
        let mut sizes = Vec::new();
        let mut consumed = 0;
        {
            let mut it =
                serde_json::Deserializer::from_slice(&self.buf).into_iter::<serde_json::Value>();
            loop {
                match it.next() {
                    Some(Ok(value)) => {
                        consumed = it.byte_offset();
                        match terminal_size(&value) {
                            Some(size) => sizes.push(size),
                            None => {
                                self.failed = true;
                                break;
                            }
                        }
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(_)) => {
                        self.failed = true;
                        break;
                    }
                    None => {
                        consumed = self.buf.len();
                        break;
                    }
                }
            }
        }
        if self.failed {
            self.buf.clear();
        } else {
            let _ = self.buf.split_to(consumed);
        }
        sizes
    }
}

fn terminal_size(value: &serde_json::Value) -> Option<TerminalSize> {
    let object = value.as_object()?;
    let field = |name: &str| -> Option<u16> {
        match object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            None => Some(0),
            Some((_, v)) if v.is_null() => Some(0),
            Some((_, v)) => v.as_u64().and_then(|n| u16::try_from(n).ok()),
        }
    };
    Some(TerminalSize {
        width: field("Width")?,
        height: field("Height")?,
    })
}

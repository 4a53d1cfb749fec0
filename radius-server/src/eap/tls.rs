//! The TLS layer shared by EAP-TLS, PEAP and EAP-TTLS: rustls running in memory, and the EAP-TLS framing of its
//! records (RFC 5216 §3.1, RFC 5281 §9.1, PEAP §3.1).
//!
//! # Format (the data after the EAP type octet)
//! ```text
//! flags(1: L 0x80 length included, M 0x40 more fragments, S 0x20 start, low 3 bits PEAP/TTLS version)
//! [TLS message length(4), when L]  TLS records…
//! ```
//! A message longer than one fragment goes out in pieces; the peer acknowledges each with an empty response and
//! we acknowledge theirs with an empty request. Reassembly is bounded ([`MAX_MESSAGE`]).

use rustls::ServerConnection;
use std::io::{Read, Write};
use std::sync::Arc;

pub const FLAG_LENGTH: u8 = 0x80;
pub const FLAG_MORE: u8 = 0x40;
pub const FLAG_START: u8 = 0x20;

/// Longest TLS message a peer may send in fragments (a client certificate chain fits easily).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Why the TLS layer gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("EAP-TLS data without its flags octet")]
    NoFlags,
    #[error("EAP-TLS length flag without a length")]
    NoLength,
    #[error("fragments add up to more than {MAX_MESSAGE} octets")]
    TooLong,
    #[error("fragments add up to {got} octets, the first declared {declared}")]
    LengthMismatch { declared: usize, got: usize },
    #[error("TLS: {0}")]
    Tls(String),
}

/// What one response carried.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// An empty response: the peer acknowledges our fragment or our last flight.
    Ack,
    /// A fragment with more to come: acknowledge it.
    Fragment,
    /// The last fragment: the whole message went to TLS.
    Message,
}

/// One TLS session inside an EAP conversation.
pub struct Tunnel {
    conn: ServerConnection,
    /// PEAP/TTLS version bits echoed in every request (0 for all three methods as Stratus speaks them).
    version: u8,
    fragment: usize,
    incoming: Vec<u8>,
    declared: Option<usize>,
    outgoing: Vec<u8>,
    sent: usize,
}

impl Tunnel {
    pub fn new(config: Arc<rustls::ServerConfig>, fragment: usize) -> Result<Self, TlsError> {
        Ok(Tunnel {
            conn: ServerConnection::new(config).map_err(|e| TlsError::Tls(e.to_string()))?,
            version: 0,
            fragment: fragment.clamp(64, 3000),
            incoming: Vec::new(),
            declared: None,
            outgoing: Vec::new(),
            sent: 0,
        })
    }

    /// The data of an empty request acknowledging a fragment.
    pub fn ack(&self) -> Vec<u8> {
        vec![self.version]
    }

    /// Take one response's EAP data; a complete message is handed to TLS and processed.
    pub fn receive(&mut self, data: &[u8]) -> Result<Input, TlsError> {
        let (&flags, mut rest) = data.split_first().ok_or(TlsError::NoFlags)?;
        if flags & FLAG_LENGTH != 0 {
            let len: [u8; 4] = rest
                .get(..4)
                .and_then(|l| l.try_into().ok())
                .ok_or(TlsError::NoLength)?;
            let len = u32::from_be_bytes(len) as usize;
            if len > MAX_MESSAGE {
                return Err(TlsError::TooLong);
            }
            if self.incoming.is_empty() {
                self.declared = Some(len);
            }
            rest = &rest[4..];
        }
        if rest.is_empty() && flags & FLAG_MORE == 0 && self.incoming.is_empty() {
            return Ok(Input::Ack);
        }
        if self.incoming.len() + rest.len() > MAX_MESSAGE {
            return Err(TlsError::TooLong);
        }
        self.incoming.extend_from_slice(rest);
        if flags & FLAG_MORE != 0 {
            return Ok(Input::Fragment);
        }
        let message = std::mem::take(&mut self.incoming);
        if let Some(declared) = self.declared.take() {
            if declared != message.len() {
                return Err(TlsError::LengthMismatch {
                    declared,
                    got: message.len(),
                });
            }
        }
        self.feed(&message)?;
        Ok(Input::Message)
    }

    fn feed(&mut self, mut message: &[u8]) -> Result<(), TlsError> {
        let tls = |e: rustls::Error| TlsError::Tls(e.to_string());
        while !message.is_empty() {
            let n = self
                .conn
                .read_tls(&mut message)
                .map_err(|e| TlsError::Tls(e.to_string()))?;
            self.conn.process_new_packets().map_err(tls)?;
            if n == 0 {
                break;
            }
        }
        Ok(())
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    pub fn connection(&self) -> &ServerConnection {
        &self.conn
    }

    /// Plaintext the peer sent through the tunnel.
    pub fn read_plaintext(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.conn.reader().read(&mut buf) {
            if n == 0 || out.len() > MAX_MESSAGE {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    /// Send plaintext through the tunnel (with the next [`Tunnel::flush`]).
    pub fn write_plaintext(&mut self, data: &[u8]) -> Result<(), TlsError> {
        self.conn
            .writer()
            .write_all(data)
            .map_err(|e| TlsError::Tls(e.to_string()))
    }

    /// Move whatever TLS wants to send into the outgoing message.
    pub fn flush(&mut self) {
        if self.sent >= self.outgoing.len() {
            self.outgoing.clear();
            self.sent = 0;
        }
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.outgoing).is_err() {
                break;
            }
        }
    }

    pub fn has_pending(&self) -> bool {
        self.sent < self.outgoing.len()
    }

    /// The data of the next request: one fragment of the outgoing message.
    pub fn next_fragment(&mut self) -> Vec<u8> {
        let total = self.outgoing.len();
        let left = total - self.sent;
        let first = self.sent == 0;
        let chunk = left.min(self.fragment);
        let more = chunk < left;
        let mut out = Vec::with_capacity(chunk + 5);
        let mut flags = self.version;
        if more {
            flags |= FLAG_MORE;
        }
        if first && more {
            flags |= FLAG_LENGTH;
            out.push(flags);
            out.extend_from_slice(&(total as u32).to_be_bytes());
        } else {
            out.push(flags);
        }
        out.extend_from_slice(&self.outgoing[self.sent..self.sent + chunk]);
        self.sent += chunk;
        out
    }

    /// The MSK (64 octets) from the TLS keying material exporter. Key_Material is 128 octets (MSK ‖ EMSK): the
    /// TLS 1.3 exporter mixes the length in, so the whole 128 are derived and the first 64 kept.
    pub fn export_msk(&self, label: &[u8], context: Option<&[u8]>) -> Option<[u8; 64]> {
        let material = self
            .conn
            .export_keying_material([0u8; 128], label, context)
            .ok()?;
        let mut msk = [0u8; 64];
        msk.copy_from_slice(&material[..64]);
        Some(msk)
    }

    /// `N` octets of TLS keying material with `label` and no context (RFC 5705; RFC 8446 §7.5 for TLS 1.3),
    /// e.g. the implicit challenge of EAP-TTLS/MSCHAPv2.
    pub fn export<const N: usize>(&self, label: &[u8]) -> Option<[u8; N]> {
        self.conn.export_keying_material([0u8; N], label, None).ok()
    }

    pub fn is_tls13(&self) -> bool {
        self.conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3)
    }
}

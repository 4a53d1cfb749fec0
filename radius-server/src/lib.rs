//! # radius-server
//!
//! Will own the RADIUS listeners: UDP authentication and accounting, the RFC 2865/2866 packet codec with the
//! attribute dictionary as data, per-client shared secrets and Message-Authenticator, PAP, the TOTP
//! Access-Challenge flow, reply attributes from bound groups, and the EAP methods (PEAP-MSCHAPv2, EAP-TTLS/PAP,
//! EAP-TLS) with MPPE keys. Authentication decisions are calls on `core_directory::Directory::authenticate`. It
//! must not depend on any other listener.
//!
//! Not built yet: the crate exists so the workspace has its final shape.

//! Digests and signatures Sextant puts on what it sends: SHA-256 keys and the
//! `X-Sextant-Signature` of webhook bodies (alert notifications and action calls),
//! which receivers verify with the shared secret.

use sha2::{Digest, Sha256};

/// Hex SHA-256.
pub fn sha256_hex(s: &[u8]) -> String {
    hex(&Sha256::digest(s))
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// The signature header value for a webhook body sent at `unix_s`:
/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<unix seconds>.<body>">`. The time
/// inside the signed text lets receivers refuse replays.
pub fn webhook_signature(secret: &[u8], unix_s: i64, body: &[u8]) -> String {
    let mut msg = format!("{unix_s}.").into_bytes();
    msg.extend_from_slice(body);
    format!("t={unix_s},v1={}", hex(&hmac_sha256(secret, &msg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4231_vectors_and_signature_format() {
        // RFC 4231 test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert_eq!(
            webhook_signature(b"k", 1_700_000_000, b"{}"),
            format!("t=1700000000,v1={}", hex(&hmac_sha256(b"k", b"1700000000.{}")))
        );
    }
}

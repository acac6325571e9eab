//! Pagination tokens (v0 `NextToken`, v2026 `paginationToken`): their byte layout, encoding and
//! decoding.
//!
//! Real Amazon tokens are standard base64 containing `+`, `/` and `=`, and a client that forgets to
//! percent-encode them gets a decode error (the `+` arrives as a space). The sim reproduces that on
//! purpose: every token starts with bytes 0xFB 0xFF (base64 "+/") and is padded to a length that
//! leaves "==" at the end. A token also carries a fingerprint of the filter parameters it was issued
//! for, so resending it with other filters is detected, and a keyset cursor (sort key of the last
//! row served) so orders changing between pages are neither skipped nor repeated by the sim itself.
//!
//! One special token, `PageToken::repeating`, is what `FaultKind::RepeatPageToken` hands out on a
//! first page: the operations answer it with the first page again and the same token, forever.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::seed::fnv1a64;

const MAGIC: [u8; 2] = [0xFB, 0xFF];

/// Which operation issued a token; a token from one cannot page another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    GetOrdersV0 = 1,
    GetOrderItemsV0 = 2,
    SearchOrders = 3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    pub kind: TokenKind,
    /// Fingerprint of the filter parameters the token was issued for.
    pub fingerprint: u64,
    /// The effective upper date bound of the first page, so later pages see the same window even
    /// when the client let the sim default it to "now − 2 min".
    pub upper_bound: i64,
    /// Unix milliseconds; tokens expire `SimConfig::page_token_ttl_*` after this.
    pub issued_at_ms: i64,
    /// Sort key of the last row served: (date seconds, order id) for orders, (0, index) for items.
    pub cursor_secs: i64,
    pub cursor_key: String,
}

/// Cursor key of the repeating token; no order id or item index looks like it.
const REPEATING_KEY: &str = "\u{1}repeat";

impl PageToken {
    /// The token a `RepeatPageToken` fault gives a first page: valid for any filters, never
    /// expiring, and always answered with the first page and itself.
    pub fn repeating(kind: TokenKind) -> PageToken {
        PageToken {
            kind,
            fingerprint: 0,
            upper_bound: 0,
            issued_at_ms: 0,
            cursor_secs: 0,
            cursor_key: REPEATING_KEY.to_string(),
        }
    }

    pub fn is_repeating(&self) -> bool {
        self.cursor_key == REPEATING_KEY
    }

    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&MAGIC);
        bytes.push(self.kind as u8);
        bytes.extend_from_slice(&self.fingerprint.to_be_bytes());
        bytes.extend_from_slice(&self.upper_bound.to_be_bytes());
        bytes.extend_from_slice(&self.issued_at_ms.to_be_bytes());
        bytes.extend_from_slice(&self.cursor_secs.to_be_bytes());
        let key = self.cursor_key.as_bytes();
        let key = &key[..key.len().min(255)];
        bytes.push(key.len() as u8);
        bytes.extend_from_slice(key);
        let checksum = fnv1a64(&bytes) as u32;
        bytes.extend_from_slice(&checksum.to_be_bytes());
        // len % 3 == 1 makes base64 end in "==".
        while bytes.len() % 3 != 1 {
            bytes.push(0);
        }
        STANDARD.encode(bytes)
    }

    /// `None` for anything that is not a token this sim issued intact.
    pub fn decode(text: &str) -> Option<PageToken> {
        let bytes = STANDARD.decode(text).ok()?;
        let mut reader = Reader {
            bytes: &bytes,
            at: 0,
        };
        if reader.take(2)? != MAGIC {
            return None;
        }
        let kind = match reader.take(1)?[0] {
            1 => TokenKind::GetOrdersV0,
            2 => TokenKind::GetOrderItemsV0,
            3 => TokenKind::SearchOrders,
            _ => return None,
        };
        let fingerprint = u64::from_be_bytes(reader.take(8)?.try_into().ok()?);
        let upper_bound = i64::from_be_bytes(reader.take(8)?.try_into().ok()?);
        let issued_at_ms = i64::from_be_bytes(reader.take(8)?.try_into().ok()?);
        let cursor_secs = i64::from_be_bytes(reader.take(8)?.try_into().ok()?);
        let key_len = usize::from(reader.take(1)?[0]);
        let cursor_key = String::from_utf8(reader.take(key_len)?.to_vec()).ok()?;
        let body_len = reader.at;
        let checksum = u32::from_be_bytes(reader.take(4)?.try_into().ok()?);
        if checksum != fnv1a64(&bytes[..body_len]) as u32 {
            return None;
        }
        Some(PageToken {
            kind,
            fingerprint,
            upper_bound,
            issued_at_ms,
            cursor_secs,
            cursor_key,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(count)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_contains_awkward_characters() {
        let token = PageToken {
            kind: TokenKind::GetOrdersV0,
            fingerprint: 0xDEAD_BEEF,
            upper_bound: 1_800_000_000,
            issued_at_ms: 1_800_000_100_000,
            cursor_secs: 1_799_999_000,
            cursor_key: "402-1234567-7654321".into(),
        };
        let text = token.encode();
        assert!(
            text.contains('+') && text.contains('/') && text.ends_with("=="),
            "{text}"
        );
        assert_eq!(PageToken::decode(&text), Some(token));
        // What an un-encoded token looks like after query decoding.
        assert_eq!(PageToken::decode(&text.replace('+', " ")), None);
        assert_eq!(PageToken::decode(&text[..text.len() - 8]), None);
        assert_eq!(PageToken::decode(""), None);
    }
}

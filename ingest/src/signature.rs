//! Webhook signatures: checking them (constant-time) and, for tests, benchmarks and
//! upstream senders, computing them.
//!
//! | scheme | header | MAC |
//! |---|---|---|
//! | Telegram | `X-Telegram-Bot-Api-Secret-Token` | none: the secret itself, compared in constant time |
//! | Meta (WhatsApp, Messenger, Instagram) | `X-Hub-Signature-256: sha256=<hex>` | HMAC-SHA256(app secret, raw body) |
//! | Sluice (generic, helpdesk) | `X-Sluice-Signature: sha256=<hex>` | HMAC-SHA256(secret, raw body) |
//! | Stripe | `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]` | HMAC-SHA256(signing secret, `t.body`), `t` within the tolerance |
//! | Twilio | `X-Twilio-Signature: <base64>` | HMAC-SHA1(auth token, URL + each POST parameter's name and value, sorted by name) |

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;
type HmacSha1 = Hmac<Sha1>;

fn mac256(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

fn mac1(key: &[u8]) -> HmacSha1 {
    match HmacSha1::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

/// Compares a shared secret token (Telegram's) in constant time.
pub fn verify_token(adapter: &'static str, expected: &Secret, given: Option<&str>) -> Result<()> {
    let given = given.ok_or_else(|| Error::unauthorized(adapter, "secret token header missing"))?;
    if bool::from(expected.expose().as_bytes().ct_eq(given.as_bytes())) {
        Ok(())
    } else {
        Err(Error::unauthorized(adapter, "secret token does not match"))
    }
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body): the value of `X-Hub-Signature-256`
/// and `X-Sluice-Signature`.
pub fn sign_sha256_header(secret: &str, body: &[u8]) -> String {
    let mut mac = mac256(secret.as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a `sha256=<hex>` header against any of `secrets` (several during a rotation).
pub fn verify_sha256_header(
    adapter: &'static str,
    secrets: &[Secret],
    body: &[u8],
    header: Option<&str>,
) -> Result<()> {
    let header = header.ok_or_else(|| Error::unauthorized(adapter, "signature header missing"))?;
    let hex_digest = header
        .strip_prefix("sha256=")
        .ok_or_else(|| Error::unauthorized(adapter, "signature header must start with sha256="))?;
    let expected = hex::decode(hex_digest.trim())
        .map_err(|_| Error::unauthorized(adapter, "signature is not hex"))?;
    let matches = secrets.iter().any(|secret| {
        let mut mac = mac256(secret.expose().as_bytes());
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err(Error::unauthorized(adapter, "signature does not match"))
    }
}

/// The `Stripe-Signature` header Stripe would send for `body` at Unix time `t`.
pub fn sign_stripe_header(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = mac256(secret.as_bytes());
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a `Stripe-Signature` header: some `v1` must be the HMAC of `t.body` with one
/// of `secrets`, and `t` must be within `tolerance_secs` of `now_secs`.
pub fn verify_stripe_header(
    secrets: &[Secret],
    body: &[u8],
    header: Option<&str>,
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<()> {
    const ADAPTER: &str = "stripe";
    let header = header.ok_or_else(|| Error::unauthorized(ADAPTER, "Stripe-Signature missing"))?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => {
                if let Ok(bytes) = hex::decode(value) {
                    candidates.push(bytes);
                }
            }
            _ => {}
        }
    }
    let t = timestamp.ok_or_else(|| Error::unauthorized(ADAPTER, "no timestamp t= in header"))?;
    if candidates.is_empty() {
        return Err(Error::unauthorized(ADAPTER, "no v1 signature in header"));
    }
    let matches = secrets.iter().any(|secret| {
        let mut mac = mac256(secret.expose().as_bytes());
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        candidates
            .iter()
            .any(|candidate| bool::from(digest.as_slice().ct_eq(candidate)))
    });
    if !matches {
        return Err(Error::unauthorized(ADAPTER, "no v1 signature matches"));
    }
    if (now_secs - t).abs() > tolerance_secs {
        return Err(Error::unauthorized(
            ADAPTER,
            format!(
                "timestamp {t} is {}s away from now, beyond the {tolerance_secs}s tolerance",
                now_secs - t
            ),
        ));
    }
    Ok(())
}

/// The `X-Twilio-Signature` Twilio would send for a POST of `params` to `url`.
pub fn sign_twilio(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(twilio_mac(auth_token, url, params))
}

fn twilio_mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = mac1(auth_token.as_bytes());
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.finalize().into_bytes().to_vec()
}

/// Checks `X-Twilio-Signature` for a POST of `params` to the public `url`.
pub fn verify_twilio(
    auth_token: &Secret,
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<()> {
    const ADAPTER: &str = "twilio";
    let header =
        header.ok_or_else(|| Error::unauthorized(ADAPTER, "X-Twilio-Signature missing"))?;
    let given = BASE64
        .decode(header.trim())
        .map_err(|_| Error::unauthorized(ADAPTER, "signature is not base64"))?;
    let expected = twilio_mac(auth_token.expose(), url, params);
    if bool::from(expected.as_slice().ct_eq(given.as_slice())) {
        Ok(())
    } else {
        Err(Error::unauthorized(
            ADAPTER,
            format!("signature does not match for URL {url}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Vec<Secret> {
        vec![Secret::new(s)]
    }

    #[test]
    fn twilio_matches_the_documented_example() {
        // Twilio's security docs: URL, auth token 12345 and these parameters sign to
        // 0/KCTR6DLpKmkAf8muzZqo1nDgQ= (also used by Twilio's SDK tests).
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            sign_twilio("12345", url, &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        let token = Secret::new("12345");
        verify_twilio(&token, url, &params, Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")).unwrap();
        assert!(
            verify_twilio(
                &token,
                url,
                &params[1..],
                Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
            )
            .is_err()
        );
    }

    #[test]
    fn sha256_header_round_trips_and_rejects_tampering() {
        let body = br#"{"a":1}"#;
        let header = sign_sha256_header("s3cret", body);
        verify_sha256_header("events", &secret("s3cret"), body, Some(&header)).unwrap();
        assert!(verify_sha256_header("events", &secret("other"), body, Some(&header)).is_err());
        assert!(
            verify_sha256_header("events", &secret("s3cret"), b"{\"a\":2}", Some(&header)).is_err()
        );
        assert!(verify_sha256_header("events", &secret("s3cret"), body, None).is_err());
        assert!(verify_sha256_header("events", &secret("s3cret"), body, Some("sha1=00")).is_err());
        // A rotation: the old and the new secret are both accepted.
        let both = vec![Secret::new("old"), Secret::new("s3cret")];
        verify_sha256_header("events", &both, body, Some(&header)).unwrap();
    }

    #[test]
    fn stripe_accepts_any_v1_and_enforces_the_tolerance() {
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_700_000_000;
        let good = sign_stripe_header("whsec_test", now - 10, body);
        let v1 = good.split(",v1=").nth(1).unwrap();
        let header = format!("t={},v1=deadbeef,v1={v1},v0=ignored", now - 10);
        verify_stripe_header(&secret("whsec_test"), body, Some(&header), now, 300).unwrap();
        let stale = sign_stripe_header("whsec_test", now - 301, body);
        let err = verify_stripe_header(&secret("whsec_test"), body, Some(&stale), now, 300)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tolerance"), "{err}");
        assert!(verify_stripe_header(&secret("whsec_other"), body, Some(&good), now, 300).is_err());
        assert!(verify_stripe_header(&secret("whsec_test"), b"{}", Some(&good), now, 300).is_err());
        assert!(
            verify_stripe_header(&secret("whsec_test"), body, Some("v1=00"), now, 300).is_err()
        );
    }

    #[test]
    fn tokens_compare_exactly() {
        let expected = Secret::new("tok");
        verify_token("telegram", &expected, Some("tok")).unwrap();
        assert!(verify_token("telegram", &expected, Some("to")).is_err());
        assert!(verify_token("telegram", &expected, None).is_err());
    }
}

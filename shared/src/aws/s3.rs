//! The two S3 calls the photo evidence needs, made without the S3 SDK crate: a presigned PUT
//! (SigV4 in the query string, for the uploader's phone) and a signed HeadObject, both signed
//! and limited as [`super::signing`] says and sent over the shared TLS set-up.
//!
//! Why not `aws-sdk-s3`: its endpoint rules and client code made up ~0.8 MB zipped of each of
//! the two functions that used it (3.6 MB against 2.8 MB without), over the 3 MB package budget
//! (docs/benchmarks.md, "Cold start"); these two calls need none of it.
//!
//! Addressing: with the configuration's endpoint override (`AWS_ENDPOINT_URL`: LocalStack), path
//! style `{endpoint}/{bucket}/{key}`; on AWS, virtual-hosted `{bucket}.s3.{region}.{domain}` for a
//! DNS-safe bucket name without dots (what the template's generated names are), path style on
//! the regional endpoint otherwise. Not supported, as nothing here needs them: an S3-only
//! override (`AWS_ENDPOINT_URL_S3`), FIPS or dual-stack endpoints, access points.

use super::signing::{self, CallHook, Failure, Signer, SigningError, Transport};
use aws_config::SdkConfig;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use aws_smithy_runtime_api::client::identity::Identity;
use http_body_util::Full;
use hyper::body::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::time::{Duration, SystemTime};

/// What S3 leaves unescaped in a key's path: RFC 3986's unreserved characters and `/`.
const KEY_PATH: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("no such object")]
    NotFound,
    #[error("S3 answered {0}")]
    Refused(u16),
    #[error("S3 unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Signing(#[from] SigningError),
}

/// A PUT the caller makes itself: the URL, and headers it must send as given (they are signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedPut {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// What HeadObject tells of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectHead {
    pub content_type: Option<String>,
    pub content_length: Option<i64>,
    pub e_tag: Option<String>,
}

/// A request to sign: what is asked of which object, with which headers and payload.
struct Unsigned<'a> {
    method: &'a str,
    key: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: SignableBody<'a>,
}

impl<'a> Unsigned<'a> {
    fn new(method: &'a str, key: &'a str, headers: &'a [(&'a str, &'a str)]) -> Self {
        Self { method, key, headers, body: SignableBody::UnsignedPayload }
    }
}

/// One bucket, addressed and signed for.
#[derive(Clone)]
pub struct S3Bucket {
    /// Everything of an object's URL before `/{key}`.
    base: String,
    transport: Transport,
}

impl S3Bucket {
    /// The bucket `name` in the configuration's region, at its endpoint override if it has one.
    pub fn from_config(aws: &SdkConfig, name: &str) -> Result<Self, S3Error> {
        let signer = Signer::from_config(aws, "s3")?;
        let base = bucket_base(aws.endpoint_url(), signer.region(), name);
        Ok(Self::at(base, signer))
    }

    fn at(base: String, signer: Signer) -> Self {
        Self { base, transport: Transport::new(signer) }
    }

    /// The same bucket, each call it makes reported to `hook`.
    pub fn observed(self, hook: CallHook) -> Self {
        Self { transport: self.transport.observed(hook), ..self }
    }

    /// A PUT of `key` as `content_type`, valid for `lifetime` from now. No call is made.
    pub async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        lifetime: Duration,
    ) -> Result<PresignedPut, S3Error> {
        let identity = self.transport.signer.identity().await?;
        let headers = [("content-type", content_type)];
        let request = Unsigned::new("PUT", key, &headers);
        let signed = self.sign_in_query(request, lifetime, &identity, SystemTime::now())?;
        let headers = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Ok(PresignedPut { url: signed.uri().to_string(), headers })
    }

    /// HeadObject on `key`: [`S3Error::NotFound`] when there is no such object.
    pub async fn head(&self, key: &str) -> Result<ObjectHead, S3Error> {
        signing::with_retries(|| self.head_once(key), S3Error::Unavailable).await
    }

    async fn head_once(&self, key: &str) -> Result<ObjectHead, Failure<S3Error>> {
        let identity = self.transport.signer.identity().await.map_err(|e| Failure::Final(e.into()))?;
        let request = self.sign_in_headers(Unsigned::new("HEAD", key, &[]), &identity, SystemTime::now());
        let request = request.map_err(Failure::Final)?;
        let (head, _) = self.transport.attempt("HeadObject", request).await.map_err(Failure::Transient)?;
        let header = |name: &str| head.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        match head.status.as_u16() {
            200 => Ok(ObjectHead {
                content_type: header("content-type"),
                content_length: header("content-length").and_then(|v| v.parse().ok()),
                e_tag: header("etag"),
            }),
            404 => Err(Failure::Final(S3Error::NotFound)),
            code if code >= 500 || code == 429 => Err(Failure::Transient(format!("answered {code}"))),
            code => Err(Failure::Final(S3Error::Refused(code))),
        }
    }

    fn object_url(&self, key: &str) -> String {
        format!("{}/{}", self.base, utf8_percent_encode(key.trim_start_matches('/'), KEY_PATH))
    }

    /// A request whose query string carries its signature, valid for `lifetime` from `now`; its
    /// payload is not signed (the uploader's bytes are not known yet).
    fn sign_in_query(
        &self,
        request: Unsigned<'_>,
        lifetime: Duration,
        identity: &Identity,
        now: SystemTime,
    ) -> Result<hyper::Request<Full<Bytes>>, S3Error> {
        let mut settings = s3_settings(PayloadChecksumKind::NoHeader);
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(lifetime);
        self.signed(request, settings, identity, now)
    }

    /// A request signed in its `Authorization` header, with an empty payload.
    fn sign_in_headers(
        &self,
        request: Unsigned<'_>,
        identity: &Identity,
        now: SystemTime,
    ) -> Result<hyper::Request<Full<Bytes>>, S3Error> {
        let settings = s3_settings(PayloadChecksumKind::XAmzSha256);
        self.signed(Unsigned { body: SignableBody::Bytes(&[]), ..request }, settings, identity, now)
    }

    fn signed(
        &self,
        unsigned: Unsigned<'_>,
        settings: SigningSettings,
        identity: &Identity,
        now: SystemTime,
    ) -> Result<hyper::Request<Full<Bytes>>, S3Error> {
        let Unsigned { method, key, headers, body } = unsigned;
        let mut request = hyper::Request::builder().method(method).uri(self.object_url(key));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(Full::default()).map_err(|e| SigningError::Failed(e.to_string()))?;
        self.transport.signer.sign(&mut request, body, settings, identity, now)?;
        Ok(request)
    }
}

/// S3's signing rules: the path is signed as sent (escaped once, never normalised), and a
/// header-signed request states its payload's hash.
fn s3_settings(checksum: PayloadChecksumKind) -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = checksum;
    settings
}

/// Everything of an object's URL before `/{key}`; see the module's note on addressing.
fn bucket_base(endpoint: Option<&str>, region: &str, bucket: &str) -> String {
    if let Some(endpoint) = endpoint {
        return format!("{}/{bucket}", endpoint.trim_end_matches('/'));
    }
    let domain = signing::partition_domain(region);
    let dns_safe = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !bucket.starts_with('-')
        && !bucket.ends_with('-');
    if dns_safe {
        format!("https://{bucket}.s3.{region}.{domain}")
    } else {
        format!("https://s3.{region}.{domain}/{bucket}")
    }
}

#[cfg(test)]
#[path = "s3_tests.rs"]
mod tests;

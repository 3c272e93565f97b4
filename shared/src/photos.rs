//! Dispatch evidence: a photo of the packed parcel, uploaded by the warehouse straight to S3
//! through a presigned PUT URL, and checked (it exists, it is an image, its size is sane) before
//! a hand-over is accepted. The bucket is the template's; locally, LocalStack's S3.

use aws_sdk_s3::presigning::PresigningConfig;
use std::time::Duration;

/// How long an upload URL stays valid.
pub const UPLOAD_URL_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// A real photo is bigger than this; anything smaller is a placeholder.
pub const MIN_PHOTO_BYTES: i64 = 1024;
pub const MAX_PHOTO_BYTES: i64 = 15 * 1024 * 1024;
pub const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "image/heic"];

#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error("no photo has been uploaded")]
    Missing,
    #[error("the upload is {0}, not a photo")]
    NotAnImage(String),
    #[error("the upload is {0} bytes: a parcel photo is {MIN_PHOTO_BYTES} to {MAX_PHOTO_BYTES}")]
    BadSize(i64),
    #[error("storage call failed: {0}")]
    Storage(String),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UploadUrl {
    pub url: String,
    pub method: &'static str,
    /// Headers the upload must send exactly as given (they are signed).
    pub headers: std::collections::BTreeMap<String, String>,
    pub expires_in_seconds: u64,
}

#[derive(Clone)]
pub struct DispatchPhotos {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl DispatchPhotos {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into() }
    }

    /// The object key of a shipment's photo: one per shipment, replaced by a new upload.
    pub fn key(shipment_id: &crate::domain::ShipmentId) -> String {
        format!("dispatch/{shipment_id}.photo")
    }

    /// A presigned PUT for the photo at `key`, for an image of `content_type`.
    pub async fn upload_url(&self, key: &str, content_type: &str) -> Result<UploadUrl, PhotoError> {
        if !IMAGE_TYPES.contains(&content_type) {
            return Err(PhotoError::NotAnImage(content_type.chars().take(64).collect()));
        }
        let config =
            PresigningConfig::expires_in(UPLOAD_URL_LIFETIME).map_err(|e| PhotoError::Storage(e.to_string()))?;
        let presigned = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .presigned(config)
            .await
            .map_err(|e| PhotoError::Storage(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        let mut headers: std::collections::BTreeMap<String, String> =
            presigned.headers().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        headers.insert("content-type".into(), content_type.to_owned());
        Ok(UploadUrl {
            url: presigned.uri().to_owned(),
            method: "PUT",
            headers,
            expires_in_seconds: UPLOAD_URL_LIFETIME.as_secs(),
        })
    }

    /// The photo at `key` if it is one: an image of a sane size. Its ETag, to keep as evidence.
    pub async fn check(&self, key: &str) -> Result<Option<String>, PhotoError> {
        let head = self.client.head_object().bucket(&self.bucket).key(key).send().await;
        let head = match head {
            Ok(head) => head,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => return Err(PhotoError::Missing),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => return Err(PhotoError::Missing),
            Err(e) => return Err(PhotoError::Storage(aws_sdk_s3::error::DisplayErrorContext(e).to_string())),
        };
        let content_type = head.content_type().unwrap_or_default();
        if !IMAGE_TYPES.contains(&content_type) {
            return Err(PhotoError::NotAnImage(content_type.chars().take(64).collect()));
        }
        let size = head.content_length().unwrap_or(0);
        if !(MIN_PHOTO_BYTES..=MAX_PHOTO_BYTES).contains(&size) {
            return Err(PhotoError::BadSize(size));
        }
        Ok(head.e_tag().map(str::to_owned))
    }
}

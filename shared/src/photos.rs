//! Dispatch evidence: a photo of the packed parcel, uploaded by the warehouse straight to S3
//! through a presigned PUT URL, and checked (it exists, it is an image, its size is sane) before
//! a hand-over is accepted. The bucket is the template's; locally, LocalStack's S3.

use crate::aws::s3::{S3Bucket, S3Error};
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
    bucket: S3Bucket,
}

impl DispatchPhotos {
    pub fn new(bucket: S3Bucket) -> Self {
        Self { bucket }
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
        let presigned = self.bucket.presign_put(key, content_type, UPLOAD_URL_LIFETIME).await.map_err(storage)?;
        Ok(UploadUrl {
            url: presigned.url,
            method: "PUT",
            headers: presigned.headers.into_iter().collect(),
            expires_in_seconds: UPLOAD_URL_LIFETIME.as_secs(),
        })
    }

    /// The photo at `key` if it is one: an image of a sane size. Its ETag, to keep as evidence.
    pub async fn check(&self, key: &str) -> Result<Option<String>, PhotoError> {
        let head = match self.bucket.head(key).await {
            Ok(head) => head,
            Err(S3Error::NotFound) => return Err(PhotoError::Missing),
            Err(e) => return Err(storage(e)),
        };
        let content_type = head.content_type.unwrap_or_default();
        if !IMAGE_TYPES.contains(&content_type.as_str()) {
            return Err(PhotoError::NotAnImage(content_type.chars().take(64).collect()));
        }
        let size = head.content_length.unwrap_or(0);
        if !(MIN_PHOTO_BYTES..=MAX_PHOTO_BYTES).contains(&size) {
            return Err(PhotoError::BadSize(size));
        }
        Ok(head.e_tag)
    }
}

fn storage(err: S3Error) -> PhotoError {
    PhotoError::Storage(err.to_string())
}

//! Downloading a report document from its presigned URL, as a stream.
//!
//! The URL is S3's, not SP-API's: the request carries no `x-amz-access-token` and no
//! `Authorization` (S3 refuses both on a presigned URL), is never redirected (the shared HTTP
//! client follows no redirect), and needs https unless the SP-API endpoint itself is a plain-http
//! override (the simulator). The body is never held whole: it is handed on chunk by chunk,
//! decompressed on the fly when the document is GZIP, with a cap on the bytes downloaded and on
//! the bytes decompressed (a small document that inflates without end is refused), and a limit
//! on how long the connection may stay silent. The URL never appears in a message or log line.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_compression::tokio::bufread::GzipDecoder;
use reqwest::{StatusCode, Url};
use tokio::io::{AsyncBufRead, AsyncRead, BufReader, ReadBuf};
use tokio_util::io::StreamReader;

use super::reports::ReportDocument;
use super::{SpApiClient, auth::describe_transport, backoff};
use crate::error::{Error, Result};

/// Bounds of one download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadLimits {
    /// Bytes received (compressed).
    pub max_download_bytes: u64,
    /// Bytes of document once decompressed.
    pub max_document_bytes: u64,
    /// Longest silence of the connection before the download counts as broken.
    pub idle_timeout: Duration,
}

impl Default for DownloadLimits {
    fn default() -> Self {
        DownloadLimits {
            // A year of a large seller's orders is a few hundred MB of XML, a tenth of that
            // compressed; these caps only stop what cannot be a report.
            max_download_bytes: 2 << 30,
            max_document_bytes: 32 << 30,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// The document, decompressed, as it arrives.
pub type DocumentReader = Pin<Box<dyn AsyncBufRead + Send>>;

/// Why a document could not be opened.
#[derive(Debug)]
pub enum DownloadError {
    /// S3 refused the URL (HTTP 403: it expired, or was not signed for this request): a fresh
    /// URL from getReportDocument is the remedy.
    UrlRefused { code: String, message: String },
    /// Anything else, after the client's retries.
    Failed(Error),
}

fn failed(document: &str, detail: String) -> DownloadError {
    DownloadError::Failed(Error::ReportDocument {
        document: document.to_owned(),
        detail,
    })
}

/// `<Code>` and `<Message>` of an S3 error body. Nothing else of it is read: some S3 errors
/// echo the signed request.
fn s3_error(body: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(body);
    let element = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(
            text[start..end]
                .chars()
                .take(200)
                .collect::<String>()
                .replace(['\n', '\r'], " "),
        )
    };
    (
        element("Code").unwrap_or_else(|| "-".to_owned()),
        element("Message").unwrap_or_default(),
    )
}

impl SpApiClient {
    /// Opens `document` for reading, retrying connection failures and 5xx answers with the
    /// client's backoff. The returned reader yields the decompressed document; errors while
    /// reading it (the connection broke, a cap was passed, the gzip is corrupt) come out of it as
    /// `io::Error`s naming the cause.
    pub async fn open_document(
        &self,
        document: &ReportDocument,
        limits: &DownloadLimits,
    ) -> Result<DocumentReader, DownloadError> {
        let id = document.document_id.as_str();
        let url = Url::parse(document.url.expose())
            .map_err(|_| failed(id, "the document URL is not a valid URL".to_owned()))?;
        let plain_http_allowed = self.base.scheme() == "http";
        if url.scheme() != "https" && !(plain_http_allowed && url.scheme() == "http") {
            return Err(failed(id, "the document URL is not https".to_owned()));
        }
        let gzip = match document.compression.as_deref() {
            None => false,
            Some("GZIP") => true,
            Some(other) => {
                return Err(failed(
                    id,
                    format!("unknown compressionAlgorithm {other:?} (expected GZIP)"),
                ));
            }
        };
        let mut delays = backon::BackoffBuilder::build(backoff(&self.limits.retry));
        let response = loop {
            // No SP-API header: only the client's User-Agent goes with it. The whole download
            // may take long; silence is bounded chunk by chunk below instead.
            let sent = self
                .http
                .get(url.clone())
                .timeout(Duration::from_secs(24 * 3600))
                .send()
                .await;
            let error = match sent {
                Ok(r) if r.status().is_success() => break r,
                Ok(r) if r.status() == StatusCode::FORBIDDEN => {
                    let body = r.bytes().await.unwrap_or_default();
                    let (code, message) = s3_error(&body[..body.len().min(4096)]);
                    return Err(DownloadError::UrlRefused { code, message });
                }
                Ok(r) => {
                    let status = r.status();
                    let body = r.bytes().await.unwrap_or_default();
                    let (code, message) = s3_error(&body[..body.len().min(4096)]);
                    let detail = format!("the download answered HTTP {status} ({code}: {message})");
                    if !status.is_server_error() {
                        return Err(failed(id, detail));
                    }
                    detail
                }
                Err(e) => format!("the download failed: {}", describe_transport(&e)),
            };
            match delays.next() {
                Some(delay) => {
                    tracing::warn!(
                        document = id,
                        delay_ms = delay.as_millis() as u64,
                        "{error}; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                None => return Err(failed(id, error)),
            }
        };
        if response
            .content_length()
            .is_some_and(|n| n > limits.max_download_bytes)
        {
            return Err(failed(
                id,
                format!(
                    "the document is larger than the {} MiB download cap",
                    limits.max_download_bytes >> 20
                ),
            ));
        }
        let (cap, idle) = (limits.max_download_bytes, limits.idle_timeout);
        let chunks =
            futures_util::stream::unfold(Some((response, 0u64)), move |state| async move {
                let (mut response, received) = state?;
                let chunk = match tokio::time::timeout(idle, response.chunk()).await {
                    Err(_) => Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the download stalled: no data for {} s", idle.as_secs()),
                    )),
                    Ok(Err(e)) => Err(io::Error::other(format!(
                        "the download broke off: {}",
                        describe_transport(&e)
                    ))),
                    Ok(Ok(None)) => return None,
                    Ok(Ok(Some(chunk))) => Ok(chunk),
                };
                match chunk {
                    Ok(chunk) if received + chunk.len() as u64 > cap => Some((
                        Err(io::Error::other(format!(
                            "the document is larger than the {} MiB download cap",
                            cap >> 20
                        ))),
                        None,
                    )),
                    Ok(chunk) => {
                        let received = received + chunk.len() as u64;
                        Some((Ok(chunk), Some((response, received))))
                    }
                    // The stream ends after its first error.
                    Err(e) => Some((Err(e), None)),
                }
            });
        let raw = StreamReader::new(Box::pin(chunks));
        let decoded: Pin<Box<dyn AsyncRead + Send>> = if gzip {
            let mut decoder = GzipDecoder::new(raw);
            // Large objects may be several gzip members end to end.
            decoder.multiple_members(true);
            Box::pin(decoder)
        } else {
            Box::pin(raw)
        };
        let capped = Capped {
            inner: decoded,
            read: 0,
            cap: limits.max_document_bytes,
        };
        Ok(Box::pin(BufReader::with_capacity(64 * 1024, capped)))
    }
}

/// Fails a reader once it has produced more than `cap` bytes.
struct Capped {
    inner: Pin<Box<dyn AsyncRead + Send>>,
    read: u64,
    cap: u64,
}

impl AsyncRead for Capped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        ready!(this.inner.as_mut().poll_read(cx, buf))?;
        this.read += (buf.filled().len() - before) as u64;
        if this.read > this.cap {
            // A read that fails hands out nothing (AsyncRead's contract).
            buf.set_filled(before);
            return Poll::Ready(Err(io::Error::other(format!(
                "the document is larger than the {} MiB cap once decompressed",
                this.cap >> 20
            ))));
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn s3_errors_give_code_and_message_only() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message><X-Amz-Expires>300</X-Amz-Expires><CanonicalRequest>GET /x?X-Amz-Credential=AKIA</CanonicalRequest></Error>";
        let (code, message) = s3_error(body);
        assert_eq!(code, "AccessDenied");
        assert_eq!(message, "Request has expired");
        assert_eq!(s3_error(b"<html>oops</html>").0, "-");
    }

    #[tokio::test]
    async fn a_reader_past_its_cap_fails_with_the_reason() {
        let data: &[u8] = &[7u8; 1000];
        let mut capped = Capped {
            inner: Box::pin(data),
            read: 0,
            cap: 999,
        };
        let mut out = Vec::new();
        let err = capped.read_to_end(&mut out).await.unwrap_err();
        assert!(err.to_string().contains("cap"), "{err}");
        let mut fits = Capped {
            inner: Box::pin(data),
            read: 0,
            cap: 1000,
        };
        let mut out = Vec::new();
        fits.read_to_end(&mut out).await.unwrap();
        assert_eq!(out.len(), 1000);
    }
}

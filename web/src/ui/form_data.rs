//! Page forms sent as `multipart/form-data` (the forms with a file input):
//! recognising them and reading their fields, for the CSRF guard and the
//! upload handlers alike.

use axum::body::Bytes;
use axum::http::{header, HeaderMap};

/// One field of a multipart form.
#[derive(Debug, Clone)]
pub struct FormField {
    /// The field's name.
    pub name: String,
    /// The file name the browser sent, for a file input.
    pub file_name: Option<String>,
    /// The field's bytes.
    pub bytes: Bytes,
}

/// A multipart form's fields as the CSRF guard read them, left in the
/// request for the handler (a 4 MiB upload is parsed once, not twice).
#[derive(Debug, Clone)]
pub struct UploadFields(pub Vec<FormField>);

/// The multipart boundary of a request, if it is a `multipart/form-data` one.
pub fn boundary(headers: &HeaderMap) -> Option<String> {
    let ctype = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = ctype.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    multer::parse_boundary(ctype).ok()
}

/// Every field of a multipart body with `boundary`, in order; `None` if the
/// body is not well-formed multipart.
pub async fn fields(boundary: &str, body: Bytes) -> Option<Vec<FormField>> {
    let stream =
        futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut out = Vec::new();
    while let Some(field) = multipart.next_field().await.ok()? {
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_owned);
        let bytes = field.bytes().await.ok()?;
        out.push(FormField {
            name,
            file_name,
            bytes,
        });
    }
    Some(out)
}

/// The text of the first field named `name` (empty if absent or not UTF-8).
pub fn text<'f>(fields: &'f [FormField], name: &str) -> &'f str {
    fields
        .iter()
        .find(|f| f.name == name)
        .and_then(|f| std::str::from_utf8(&f.bytes).ok())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fields_are_read_and_broken_bodies_refused() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=XyZ".parse().unwrap(),
        );
        let b = boundary(&h).unwrap();
        assert_eq!(b, "XyZ");
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.csv\"\r\nContent-Type: text/csv\r\n\r\na,b\r\n1,2\r\n--XyZ--\r\n";
        let f = fields(&b, Bytes::from(body)).await.unwrap();
        assert_eq!(text(&f, "csrf"), "abc");
        assert_eq!(f[1].file_name.as_deref(), Some("p.csv"));
        assert_eq!(&f[1].bytes[..], b"a,b\r\n1,2");
        assert_eq!(text(&f, "other"), "");
        assert!(fields(&b, Bytes::from("--XyZ\r\nnonsense")).await.is_none());
        let mut plain = HeaderMap::new();
        plain.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        assert!(boundary(&plain).is_none());
    }
}

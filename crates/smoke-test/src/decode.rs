//! Compressed answers, decoded as Hurl does: by the answer's `Content-Encoding` (gzip,
//! deflate, br, zstd, identity; several in the order applied), whatever the suite sent in
//! `Accept-Encoding`. The headers are left as the server sent them, so a check can still
//! expect `content-encoding = "gzip"`. The decoded body is bounded like the raw one.

use std::io::Read;

use standby_common::probe::http::HttpResponse;

/// Replace the body with its decoded form. Errors say which encoding failed and why.
pub fn decode(resp: &mut HttpResponse, max_body: usize) -> Result<(), String> {
    let encodings: Vec<String> = resp
        .headers
        .get_all(reqwest::header::CONTENT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty() && e != "identity")
        .collect();
    if encodings.is_empty() || resp.status == 204 || resp.status == 304 || resp.body.is_empty() {
        return Ok(());
    }
    if resp.truncated {
        return Err(format!(
            "the {} body was cut at max-body ({max_body} bytes) before it could be decoded: raise max-body",
            encodings.join(", ")
        ));
    }
    let mut body = std::mem::take(&mut resp.body);
    // The last encoding listed was applied last: undo it first.
    for encoding in encodings.iter().rev() {
        body = decode_one(encoding, &body, max_body)?;
    }
    resp.body = body;
    Ok(())
}

fn decode_one(encoding: &str, data: &[u8], max_body: usize) -> Result<Vec<u8>, String> {
    let reader: Box<dyn Read + '_> = match encoding {
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(data)),
        // `deflate` is zlib-wrapped (RFC 9110); some servers send raw deflate.
        "deflate" if data.first().is_some_and(|b| b & 0x0f == 8) => Box::new(flate2::read::ZlibDecoder::new(data)),
        "deflate" => Box::new(flate2::read::DeflateDecoder::new(data)),
        "br" => Box::new(brotli::Decompressor::new(data, 64 * 1024)),
        "zstd" => Box::new(zstd::stream::read::Decoder::new(data).map_err(|e| format!("zstd: {e}"))?),
        other => {
            return Err(format!("unsupported content-encoding {other:?}: expected gzip, deflate, br, zstd or identity"))
        }
    };
    let mut out = Vec::new();
    let limit = u64::try_from(max_body).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot decode the {encoding} body ({} bytes): {e}", data.len()))?;
    if out.len() > max_body {
        return Err(format!("the {encoding} body decodes to more than max-body ({max_body} bytes): raise max-body"));
    }
    Ok(out)
}

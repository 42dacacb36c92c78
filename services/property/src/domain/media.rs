//! What media may be: which records carry it, which kinds there are, and which
//! content each kind accepts. The content type is read from the bytes themselves
//! (magic numbers), never taken from the caller's file name or word.

/// The records a media item may be attached to, and the table each lives in.
pub const MEDIABLES: &[(&str, &str)] = &[
    ("project", "property.projects"),
    ("stage", "property.stages"),
    ("lot", "property.lots"),
];

/// The kinds of media.
pub const MEDIA_TYPES: &[&str] = &["image", "floor_plan", "brochure", "video", "document"];

/// The largest piece of content one upload message may carry.
pub const MAX_CHUNK: usize = 1024 * 1024;

/// How much of the start of a file is read to tell its content type. Every signature
/// accepted here lies within the first few hundred bytes.
pub const SNIFF_LEN: usize = 8 * 1024;

const IMAGES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/heif",
];
const PDF: &[&str] = &["application/pdf"];
const VIDEOS: &[&str] = &["video/mp4", "video/quicktime", "video/webm", "video/x-m4v"];

/// The table of mediable `kind`, if it is one.
pub fn mediable_table(kind: &str) -> Option<&'static str> {
    MEDIABLES
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, table)| *table)
}

/// The content types a kind of media accepts.
pub fn accepted(media_type: &str) -> Vec<&'static str> {
    match media_type {
        "image" => IMAGES.to_vec(),
        "floor_plan" | "brochure" => [IMAGES, PDF].concat(),
        "video" => VIDEOS.to_vec(),
        "document" => PDF.to_vec(),
        _ => Vec::new(),
    }
}

/// The content type of a file that starts with `head`, if it is one Fusion knows.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    infer::get(head).map(|t| t.mime_type())
}

/// The content type of a file of kind `media_type` starting with `head`, or why it
/// is refused.
pub fn check_content(media_type: &str, head: &[u8]) -> Result<&'static str, String> {
    let accepted = accepted(media_type);
    match sniff(head) {
        Some(mime) if accepted.contains(&mime) => Ok(mime),
        Some(mime) => Err(format!(
            "the content is {mime}; {media_type} accepts {}",
            accepted.join(", ")
        )),
        None => Err(format!(
            "the content is of no known type; {media_type} accepts {}",
            accepted.join(", ")
        )),
    }
}

/// A file name as uploaded: not blank, at most 255 characters, no folders and no
/// control characters (it is shown to people and sent back in downloads).
pub fn file_name(s: &str) -> Result<(), String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("is required".to_owned());
    }
    if s.chars().count() > 255 {
        return Err("must be at most 255 characters".to_owned());
    }
    if s.contains(['/', '\\']) || s.chars().any(char::is_control) || s == "." || s == ".." {
        return Err("must be a plain file name, without folders or control characters".to_owned());
    }
    Ok(())
}

/// Whether a file of content type `mime` may be of kind `media_type` (checked when an
/// update changes the kind).
pub fn fits(media_type: &str, mime: &str) -> bool {
    accepted(media_type).contains(&mime)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
    const PDF_HEAD: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";

    #[test]
    fn content_types_come_from_the_bytes() {
        assert_eq!(sniff(PNG), Some("image/png"));
        assert_eq!(sniff(PDF_HEAD), Some("application/pdf"));
        assert_eq!(sniff(b"just some text"), None);
    }

    #[test]
    fn each_kind_accepts_only_its_content() {
        assert_eq!(check_content("image", PNG), Ok("image/png"));
        assert_eq!(check_content("floor_plan", PDF_HEAD), Ok("application/pdf"));
        assert_eq!(check_content("brochure", PNG), Ok("image/png"));
        let refused = check_content("image", PDF_HEAD).unwrap_err();
        assert!(refused.contains("application/pdf"), "{refused}");
        assert!(check_content("video", PNG).is_err());
        assert!(check_content("document", b"plain text").is_err());
        assert!(check_content("spreadsheet", PDF_HEAD).is_err());
        assert!(fits("floor_plan", "image/png") && !fits("document", "image/png"));
    }

    #[test]
    fn file_names_are_plain_names() {
        assert!(file_name("Lot 12 – floor plan.pdf").is_ok());
        for bad in [
            "",
            "  ",
            "../etc/passwd",
            "a/b.png",
            "a\\b.png",
            "a\nb",
            "..",
        ] {
            assert!(file_name(bad).is_err(), "{bad:?}");
        }
        assert!(file_name(&"x".repeat(256)).is_err());
    }

    #[test]
    fn mediables_are_projects_stages_and_lots() {
        assert_eq!(mediable_table("lot"), Some("property.lots"));
        assert_eq!(mediable_table("contact"), None);
    }
}

//! The `FORMAT` argument: which document a request is answered with (§2, §7).

use std::str::FromStr;

use crate::error::Error;

/// The `FORMAT` argument.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Html,
    Xml,
    XmlSimple,
    XmlDtd,
    XmlSchema,
    Json,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Html => "HTML",
            Format::Xml => "XML",
            Format::XmlSimple => "XMLSIMPLE",
            Format::XmlDtd => "XMLDTD",
            Format::XmlSchema => "XMLSCHEMA",
            Format::Json => "JSON",
        }
    }

    /// The format an early error is answered in: `FORMAT` from the query string if it is
    /// there and valid, else HTML.
    pub fn sniff(query: &[u8]) -> Format {
        query
            .split(|&b| b == b'&')
            .find_map(|pair| pair.strip_prefix(b"FORMAT="))
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(text: &str) -> Result<Format, Error> {
        [
            Format::Html,
            Format::Xml,
            Format::XmlSimple,
            Format::XmlDtd,
            Format::XmlSchema,
            Format::Json,
        ]
        .into_iter()
        .find(|f| f.as_str().eq_ignore_ascii_case(text))
        .ok_or_else(|| {
            Error::bad_request("FORMAT must be HTML, XML, XMLSIMPLE, XMLDTD, XMLSCHEMA or JSON")
        })
    }
}

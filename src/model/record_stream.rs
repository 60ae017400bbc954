//! A copy's record read in one pass, never held whole: the small fields are
//! kept, the three listings (`source_entries`, `copy_fingerprint`,
//! `content_sha256`: megabytes at 50,000 files) are checked and sealed as they
//! stream by, and each line of the copy's fingerprint is handed to the caller
//! (a re-run compares it with a walk of the copy, see
//! [`crate::model::fingerprint::Comparer`]).
//!
//! The file is the JSON the tool has always written (`record::write`): no
//! other format to migrate to, and every record an earlier version wrote reads
//! the same. The seal is taken over the record's compact JSON in field order;
//! read here, that text is made piece by piece: the small fields' JSON around
//! each listing (from the small fields, with a stand-in where a listing goes)
//! and each listing's lines as they are read. Whatever this reader does not
//! expect (fields out of the tool's order, a field twice, lines out of order,
//! an escape in the digests, a seal that does not match) makes it give up:
//! the caller then reads the record whole (`standing::read_checked`), which
//! accepts or refuses it exactly as before and says why.

use std::io::{Read, Write};

use serde_json::{Map, Value};

use crate::model::fingerprint::{self, Fingerprint, Stamp};
use crate::model::record::{Record, Sealing};
use crate::model::seal::SealKey;

/// The listings, in the order the record keeps them.
const LISTINGS: [&str; 3] = ["source_entries", "copy_fingerprint", "content_sha256"];
const COPY: usize = 1;
const DIGESTS: usize = 2;
/// The most one line of a listing may be.
const LINE_LIMIT: usize = 1 << 20;

/// A record read in one pass.
pub struct Streamed {
    /// The record without its listings (those fields are None).
    pub record: Record,
    /// Which listings it holds, in the order of [`LISTINGS`].
    pub holds: [bool; 3],
    /// Whether every line of the copy's fingerprint keeps its change time,
    /// device and inode (see `Fingerprint::has_change_times`).
    pub change_times: bool,
    /// The copy's entries and bytes as its fingerprint lists them
    /// (`Fingerprint::size`).
    pub size: (usize, u64),
}

/// Not read here: read the record whole.
struct GiveUp;
type R<T> = std::result::Result<T, GiveUp>;

/// Reads the record from `r`, handing each line of the copy's fingerprint to
/// `copy_line` in order (false: stop). None: read it whole instead.
pub fn read(r: impl Read, key: &SealKey, mut copy_line: impl FnMut(&str, &Stamp) -> bool) -> Option<Streamed> {
    let mut lx = Lexer { r, buf: vec![0; 64 << 10].into_boxed_slice(), pos: 0, len: 0 };
    read_record(&mut lx, Sealing::new(key), &mut copy_line).ok()
}

fn read_record<Rd: Read>(
    lx: &mut Lexer<Rd>,
    mut seal: Sealing,
    copy_line: &mut impl FnMut(&str, &Stamp) -> bool,
) -> R<Streamed> {
    let mut small = Map::new();
    let mut order: Vec<usize> = Vec::new();
    let mut hashed: Vec<String> = Vec::new();
    let mut change_times = true;
    let mut size = (0, 0);
    let mut raw = Vec::new();
    lx.expect(b'{')?;
    if lx.ws()? == Some(b'}') {
        lx.pos += 1;
    } else {
        loop {
            raw.clear();
            lx.raw_string(&mut raw, 4096)?;
            let name = decode(&raw)?.into_owned();
            lx.expect(b':')?;
            let listing = LISTINGS.iter().position(|l| *l == name);
            match listing {
                Some(i) if lx.ws()? != Some(b'n') => {
                    if order.contains(&i) || small.contains_key(&name) {
                        return Err(GiveUp);
                    }
                    order.push(i);
                    // The record's text up to this listing, from the fields read so far.
                    let before = segments(&small, &order)?.swap_remove(order.len() - 1);
                    seal.write_all(before.as_bytes()).map_err(|_| GiveUp)?;
                    hashed.push(before);
                    read_listing(lx, i, &mut seal, &mut change_times, &mut size, copy_line)?;
                }
                _ => {
                    raw.clear();
                    lx.raw_value(&mut raw, crate::safe_fs::OWN_LIMIT as usize)?;
                    let v: Value = serde_json::from_slice(&raw).map_err(|_| GiveUp)?;
                    if listing.is_some_and(|i| order.contains(&i)) || small.insert(name, v).is_some() {
                        return Err(GiveUp);
                    }
                }
            }
            match lx.ws()? {
                Some(b',') => lx.pos += 1,
                Some(b'}') => {
                    lx.pos += 1;
                    break;
                }
                _ => return Err(GiveUp),
            }
        }
    }
    if lx.ws()?.is_some() {
        return Err(GiveUp);
    }
    // The text between the listings, now that every field is known, must be
    // what was sealed on the way.
    let all = segments(&small, &order)?;
    if all[..order.len()] != hashed[..] {
        return Err(GiveUp);
    }
    seal.write_all(all[order.len()].as_bytes()).map_err(|_| GiveUp)?;
    let record = light(&small)?;
    if !seal.holds(record.seal.as_deref().unwrap_or_default()) {
        return Err(GiveUp);
    }
    let holds = [0, 1, 2].map(|i| order.contains(&i));
    Ok(Streamed { record, holds, change_times, size })
}

/// One listing's value, sealed as it is read; the copy's lines handed on.
fn read_listing<Rd: Read>(
    lx: &mut Lexer<Rd>,
    i: usize,
    seal: &mut Sealing,
    change_times: &mut bool,
    size: &mut (usize, u64),
    copy_line: &mut impl FnMut(&str, &Stamp) -> bool,
) -> R<()> {
    if i == DIGESTS {
        return lx.plain_string(seal);
    }
    let mut prev = String::new();
    lx.lines(seal, |line| {
        let Ok((path, st)) = fingerprint::checked_line(line) else { return false };
        // Out of order or twice: the whole read sorts them.
        if !prev.is_empty() && prev.as_str() >= path {
            return false;
        }
        prev.clear();
        prev.push_str(path);
        if i == COPY {
            *change_times &= st.id.is_some();
            size.0 += 1;
            size.1 += if st.kind == 'f' { st.size } else { 0 };
            return copy_line(path, &st);
        }
        true
    })
}

/// The record of the small fields (the seal kept as read).
fn light(small: &Map<String, Value>) -> R<Record> {
    serde_json::from_value(Value::Object(small.clone())).map_err(|_| GiveUp)
}

fn marker(i: usize) -> String {
    format!("\u{1}apim-profiles-listing-{i}")
}

/// The unsealed record's compact JSON, cut where each listing of `order`
/// goes: one more piece than listings.
fn segments(small: &Map<String, Value>, order: &[usize]) -> R<Vec<String>> {
    let mut r = Record { seal: None, ..light(small)? };
    let mut stand_ins = Vec::new();
    for &i in order {
        let m = marker(i);
        let text = match i {
            0 => {
                let f = Fingerprint::marker(&m);
                let t = serde_json::to_string(&f);
                r.source_entries = Some(std::sync::Arc::new(f));
                t
            }
            COPY => {
                let f = Fingerprint::marker(&m);
                let t = serde_json::to_string(&f);
                r.copy_fingerprint = Some(std::sync::Arc::new(f));
                t
            }
            _ => {
                let t = serde_json::to_string(&m);
                r.content_sha256 = Some(std::sync::Arc::new(m));
                t
            }
        };
        stand_ins.push(text.map_err(|_| GiveUp)?);
    }
    let mut rest = serde_json::to_string(&r).map_err(|_| GiveUp)?;
    let mut out = Vec::new();
    for s in &stand_ins {
        let at = rest.find(s.as_str()).ok_or(GiveUp)?;
        out.push(rest[..at].to_string());
        rest = rest[at + s.len()..].to_string();
    }
    out.push(rest);
    if out.iter().any(|s| s.contains("apim-profiles-listing-")) {
        return Err(GiveUp);
    }
    Ok(out)
}

/// A JSON string's text: as written when it has no escape.
fn decode(raw: &[u8]) -> R<std::borrow::Cow<'_, str>> {
    let inner = &raw[1..raw.len() - 1];
    if !inner.iter().any(|&b| b == b'\\' || b < 0x20) {
        return std::str::from_utf8(inner).map(std::borrow::Cow::Borrowed).map_err(|_| GiveUp);
    }
    serde_json::from_slice::<String>(raw).map(std::borrow::Cow::Owned).map_err(|_| GiveUp)
}

/// JSON tokens from a reader, through a buffer of its own.
struct Lexer<Rd> {
    r: Rd,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
}

impl<Rd: Read> Lexer<Rd> {
    fn peek(&mut self) -> R<Option<u8>> {
        if self.pos == self.len {
            self.len = loop {
                match self.r.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => return Err(GiveUp),
                }
            };
            self.pos = 0;
            if self.len == 0 {
                return Ok(None);
            }
        }
        Ok(Some(self.buf[self.pos]))
    }

    /// The next byte that is not white space (not taken).
    fn ws(&mut self) -> R<Option<u8>> {
        loop {
            match self.peek()? {
                Some(b' ' | b'\n' | b'\r' | b'\t') => self.pos += 1,
                other => return Ok(other),
            }
        }
    }

    fn expect(&mut self, b: u8) -> R<()> {
        if self.ws()? != Some(b) {
            return Err(GiveUp);
        }
        self.pos += 1;
        Ok(())
    }

    /// A string as written, quotes and escapes included, onto `out`.
    fn raw_string(&mut self, out: &mut Vec<u8>, limit: usize) -> R<()> {
        self.expect(b'"')?;
        out.push(b'"');
        loop {
            self.peek()?.ok_or(GiveUp)?;
            let chunk = &self.buf[self.pos..self.len];
            match chunk.iter().position(|&b| b == b'"' || b == b'\\') {
                None => {
                    out.extend_from_slice(chunk);
                    self.pos = self.len;
                }
                Some(i) => {
                    let end = chunk[i];
                    out.extend_from_slice(&chunk[..=i]);
                    self.pos += i + 1;
                    if end == b'"' {
                        return Ok(());
                    }
                    let escaped = self.peek()?.ok_or(GiveUp)?;
                    out.push(escaped);
                    self.pos += 1;
                }
            }
            if out.len() > limit {
                return Err(GiveUp);
            }
        }
    }

    /// Any value as written (white space between tokens left out).
    fn raw_value(&mut self, out: &mut Vec<u8>, limit: usize) -> R<()> {
        let mut depth = 0usize;
        loop {
            let b = self.ws()?.ok_or(GiveUp)?;
            match b {
                b'"' => self.raw_string(out, limit)?,
                b'{' | b'[' => {
                    depth += 1;
                    out.push(b);
                    self.pos += 1;
                    continue;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1).ok_or(GiveUp)?;
                    out.push(b);
                    self.pos += 1;
                }
                b',' | b':' => {
                    if depth == 0 {
                        return Err(GiveUp);
                    }
                    out.push(b);
                    self.pos += 1;
                    continue;
                }
                _ => {
                    while let Some(c) = self.peek()? {
                        if matches!(c, b',' | b'}' | b']' | b':' | b' ' | b'\n' | b'\r' | b'\t' | b'"' | b'{' | b'[') {
                            break;
                        }
                        out.push(c);
                        self.pos += 1;
                    }
                }
            }
            if out.len() > limit {
                return Err(GiveUp);
            }
            if depth == 0 {
                return Ok(());
            }
        }
    }

    /// A list of strings: each sealed as the record's compact JSON has it,
    /// and handed to `each` (false: give up).
    fn lines(&mut self, seal: &mut Sealing, mut each: impl FnMut(&str) -> bool) -> R<()> {
        self.expect(b'[')?;
        seal.write_all(b"[").map_err(|_| GiveUp)?;
        if self.ws()? == Some(b']') {
            self.pos += 1;
            return seal.write_all(b"]").map_err(|_| GiveUp);
        }
        let mut raw = Vec::new();
        let mut first = true;
        loop {
            raw.clear();
            self.raw_string(&mut raw, LINE_LIMIT)?;
            let line = decode(&raw)?;
            if !first {
                seal.write_all(b",").map_err(|_| GiveUp)?;
            }
            first = false;
            serde_json::to_writer(&mut *seal, &*line).map_err(|_| GiveUp)?;
            if !each(&line) {
                return Err(GiveUp);
            }
            match self.ws()? {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return seal.write_all(b"]").map_err(|_| GiveUp);
                }
                _ => return Err(GiveUp),
            }
        }
    }

    /// A string of plain characters (the digests: hex), sealed as it is read.
    fn plain_string(&mut self, seal: &mut Sealing) -> R<()> {
        self.expect(b'"')?;
        seal.write_all(b"\"").map_err(|_| GiveUp)?;
        loop {
            self.peek()?.ok_or(GiveUp)?;
            let chunk = &self.buf[self.pos..self.len];
            let end = chunk.iter().position(|&b| b == b'"');
            let body = &chunk[..end.unwrap_or(chunk.len())];
            if body.iter().any(|&b| !(0x20..0x7f).contains(&b) || b == b'\\') {
                return Err(GiveUp);
            }
            seal.write_all(body).map_err(|_| GiveUp)?;
            self.pos += body.len();
            if end.is_some() {
                self.pos += 1;
                return seal.write_all(b"\"").map_err(|_| GiveUp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(ino: u64) -> Stamp {
        Stamp {
            kind: 'f',
            mode: 0o644,
            size: 3,
            mtime: Some((9, 5)),
            target: None,
            ctime: Some((9, 7)),
            id: Some((1, ino)),
        }
    }

    fn key() -> SealKey {
        SealKey::for_test(7)
    }

    fn sealed() -> Record {
        let fp = |names: &[&str]| {
            let stamps = names.iter().enumerate().map(|(i, n)| (n.to_string(), stamp(i as u64)));
            std::sync::Arc::new(Fingerprint::from_stamps(stamps))
        };
        let r = Record {
            carry: vec!["a.b".into()],
            source: Some("/h \"quoted\"".into()),
            source_fingerprint: Some("f".into()),
            source_entries: Some(fp(&["a", "a-b", "a/c"])),
            copy_fingerprint: Some(fp(&["a", "a/c", "é"])),
            content_sha256: Some(std::sync::Arc::new("ab".repeat(96))),
            base: Some("base".into()),
            ..crate::model::record::tests::record(None)
        };
        let dir = tempfile::tempdir().unwrap();
        crate::model::record::write(dir.path(), &r, &key()).unwrap();
        let text = std::fs::read(dir.path().join(crate::model::record::RECORD_FILE)).unwrap();
        serde_json::from_slice(&text).unwrap()
    }

    /// A record as the tool writes it reads in one pass: its seal holds, the
    /// copy's lines come in order, and the small fields are as read whole.
    #[test]
    fn a_written_record_streams_with_its_seal() {
        let whole = sealed();
        assert!(whole.seal_check(&key()).is_ok());
        for pretty in [true, false] {
            let text = if pretty { serde_json::to_vec_pretty(&whole) } else { serde_json::to_vec(&whole) }.unwrap();
            let mut seen = Vec::new();
            let s = read(&text[..], &key(), |p, _| {
                seen.push(p.to_string());
                true
            })
            .expect("streams");
            assert_eq!(seen, ["a", "a/c", "é"]);
            assert_eq!(s.holds, [true, true, true]);
            assert!(s.change_times);
            assert_eq!(s.size, whole.copy_fingerprint.as_ref().unwrap().size());
            let light = Record { source_entries: None, copy_fingerprint: None, content_sha256: None, ..whole.clone() };
            assert_eq!(s.record, light);
        }
    }

    /// An edit anywhere, a field out of the tool's order, a field twice:
    /// not read here (the whole read then refuses or takes it as before).
    #[test]
    fn what_it_does_not_expect_is_left_to_the_whole_read() {
        let text = serde_json::to_string_pretty(&sealed()).unwrap();
        let none = |t: &str| read(t.as_bytes(), &key(), |_, _| true).is_none();
        assert!(none(&text.replace("a/c", "a/d")), "a path edited");
        assert!(none(&text.replace("abab", "abac")), "a digest edited");
        assert!(none(&text.replace("\"base\"", "\"basf\"")), "a small field edited");
        assert!(none(&text.replacen("{", "{\n  \"base\": \"base\",", 1)), "a field twice");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut o = v.as_object().unwrap().clone();
        let tool = o.remove("tool").unwrap();
        o.insert("tool".into(), tool);
        let moved = serde_json::to_string(&o).unwrap();
        assert!(none(&moved), "a field out of order");
        let back: Record = serde_json::from_str(&moved).unwrap();
        assert!(back.seal_check(&key()).is_ok(), "read whole, the same record is taken as before");
        assert!(!none(&text));
        assert!(read(text.as_bytes(), &SealKey::for_test(8), |_, _| true).is_none(), "another output's key");
        assert!(read(text.as_bytes(), &key(), |_, _| false).is_none(), "the caller stops it");
    }
}

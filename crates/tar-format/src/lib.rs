//! The tar format: POSIX ustar headers, with PAX extended headers for what ustar cannot
//! hold (names or link targets over 100 bytes, sizes of 8 GiB and more, ids over 2097151,
//! mtimes before 1970). The reader also takes GNU long names (`L`/`K`) and base-256 numbers,
//! which other tar writers (GNU tar, the Rust `tar` crate) produce.
//!
//! One implementation for both ends of a copy: the agent writes and reads it inside the
//! debug container (`tar`, `untar`), the plugin reads it (`cp` downloads, `snapshot`) and
//! writes it (`cp` uploads). Streaming only: nothing is held in memory beyond one header.

use std::io::{self, BufRead, Read, Write};

pub const BLOCK: usize = 512;

/// Why an archive name cannot be written below a destination as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafeName {
    Absolute,
    /// A `..` component.
    Parent,
    /// A NUL byte, which no path can hold.
    Nul,
}

/// The components of an archive name (`.` and empty ones dropped), for an extractor that walks
/// them one by one below its destination; absolute names, `..` and NUL bytes are refused.
pub fn name_components(name: &[u8]) -> Result<Vec<Vec<u8>>, UnsafeName> {
    if name.first() == Some(&b'/') {
        return Err(UnsafeName::Absolute);
    }
    if name.contains(&0) {
        return Err(UnsafeName::Nul);
    }
    let mut parts = Vec::new();
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(UnsafeName::Parent),
            _ => parts.push(part.to_vec()),
        }
    }
    Ok(parts)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
    /// Any other type flag (kept so the reader can name what it skips).
    Other(u8),
}

impl Kind {
    fn flag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::HardLink => b'1',
            Kind::Symlink => b'2',
            Kind::CharDevice => b'3',
            Kind::BlockDevice => b'4',
            Kind::Directory => b'5',
            Kind::Fifo => b'6',
            Kind::Other(flag) => flag,
        }
    }

    fn from_flag(flag: u8) -> Kind {
        match flag {
            b'0' | 0 | b'7' => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::CharDevice,
            b'4' => Kind::BlockDevice,
            b'5' => Kind::Directory,
            b'6' => Kind::Fifo,
            other => Kind::Other(other),
        }
    }
}

/// One archive member. `name` has no trailing slash; `size` counts data bytes (files only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: i64,
    /// Symlink target, or for a hard link the name of the member it links to.
    pub link: Vec<u8>,
}

const MAX_OCTAL_7: u64 = 0o7777777;
const MAX_OCTAL_11: u64 = 0o77777777777;

/// Writes the header(s) of `entry`; the caller then writes `size` data bytes and
/// [`write_padding`].
pub fn write_header(out: &mut impl Write, entry: &Entry) -> io::Result<()> {
    let mut name = entry.name.clone();
    if entry.kind == Kind::Directory && !name.ends_with(b"/") {
        name.push(b'/');
    }
    let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
    if name.len() > 100 {
        pax.push(("path", name.clone()));
    }
    if entry.link.len() > 100 {
        pax.push(("linkpath", entry.link.clone()));
    }
    if entry.size > MAX_OCTAL_11 {
        pax.push(("size", entry.size.to_string().into_bytes()));
    }
    if entry.uid > MAX_OCTAL_7 {
        pax.push(("uid", entry.uid.to_string().into_bytes()));
    }
    if entry.gid > MAX_OCTAL_7 {
        pax.push(("gid", entry.gid.to_string().into_bytes()));
    }
    if entry.mtime < 0 || entry.mtime as u64 > MAX_OCTAL_11 {
        pax.push(("mtime", entry.mtime.to_string().into_bytes()));
    }
    if !pax.is_empty() {
        let mut records = Vec::new();
        for (key, value) in &pax {
            records.extend_from_slice(&pax_record(key, value));
        }
        let mut pax_name = b"PaxHeaders/".to_vec();
        pax_name.extend_from_slice(last_bytes(&name, 80));
        let header = Entry {
            name: pax_name,
            kind: Kind::Other(b'x'),
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: records.len() as u64,
            mtime: entry.mtime.clamp(0, MAX_OCTAL_11 as i64),
            link: Vec::new(),
        };
        out.write_all(&ustar_block(&header, &header.name))?;
        out.write_all(&records)?;
        write_padding(out, records.len() as u64)?;
    }
    out.write_all(&ustar_block(entry, &name))
}

/// Zeros up to the next block boundary after `size` data bytes.
pub fn write_padding(out: &mut impl Write, size: u64) -> io::Result<()> {
    let rest = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
    out.write_all(&[0u8; BLOCK][..rest])
}

/// The end-of-archive marker: two zero blocks.
pub fn write_end(out: &mut impl Write) -> io::Result<()> {
    out.write_all(&[0u8; 2 * BLOCK])
}

fn last_bytes(bytes: &[u8], n: usize) -> &[u8] {
    &bytes[bytes.len().saturating_sub(n)..]
}

/// `"%d key=value\n"` where `%d` counts the whole record, itself included.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

fn ustar_block(entry: &Entry, name: &[u8]) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    put_bytes(&mut b[0..100], last_bytes(name, 100));
    put_octal(&mut b[100..108], u64::from(entry.mode & 0o7777));
    put_octal(&mut b[108..116], entry.uid.min(MAX_OCTAL_7));
    put_octal(&mut b[116..124], entry.gid.min(MAX_OCTAL_7));
    put_octal(
        &mut b[124..136],
        if entry.size > MAX_OCTAL_11 {
            0
        } else {
            entry.size
        },
    );
    put_octal(
        &mut b[136..148],
        entry.mtime.clamp(0, MAX_OCTAL_11 as i64) as u64,
    );
    b[156] = entry.kind.flag();
    put_bytes(&mut b[157..257], last_bytes(&entry.link, 100));
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    put_octal(&mut b[329..337], 0);
    put_octal(&mut b[337..345], 0);
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    put_octal(&mut b[148..155], u64::from(sum));
    b[155] = b' ';
    b
}

fn put_bytes(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Zero-padded octal, NUL-terminated, filling the field.
fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

/// Reads entries one at a time; data is read through [`Reader::data`] or skipped.
pub struct Reader<R> {
    inner: R,
    /// Data bytes of the current entry not yet consumed, then its padding.
    unread: u64,
    padding: u64,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Reader<R> {
        Reader {
            inner,
            unread: 0,
            padding: 0,
        }
    }

    /// The next member, or `None` at the end-of-archive marker (or a clean end of input).
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        self.skip_rest()?;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        loop {
            let Some(block) = self.read_block()? else {
                return Ok(None);
            };
            if block.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            verify_checksum(&block)?;
            let size = parse_number(&block[124..136])?;
            let flag = block[156];
            match flag {
                b'x' | b'g' | b'L' | b'K' => {
                    if size > 1 << 20 {
                        return Err(invalid("extended header larger than 1 MiB"));
                    }
                    let mut data = vec![0u8; size as usize];
                    self.inner.read_exact(&mut data)?;
                    self.discard(padding_of(size))?;
                    match flag {
                        b'x' => pax = parse_pax(&data)?,
                        b'L' => long_name = Some(trim_nul(&data).to_vec()),
                        b'K' => long_link = Some(trim_nul(&data).to_vec()),
                        _ => {} // global PAX headers: nothing we use
                    }
                }
                _ => {
                    let mut entry = Entry {
                        name: header_name(&block),
                        kind: Kind::from_flag(flag),
                        mode: parse_number(&block[100..108])? as u32,
                        uid: parse_number(&block[108..116])?,
                        gid: parse_number(&block[116..124])?,
                        size,
                        mtime: parse_number(&block[136..148])? as i64,
                        link: trim_nul(&block[157..257]).to_vec(),
                    };
                    if let Some(name) = long_name {
                        entry.name = name;
                    }
                    if let Some(link) = long_link {
                        entry.link = link;
                    }
                    for (key, value) in pax {
                        let number = || -> io::Result<u64> {
                            let text = std::str::from_utf8(&value)
                                .map_err(|_| invalid("bad PAX number"))?;
                            let whole = text.split('.').next().unwrap_or("");
                            whole
                                .parse()
                                .map_err(|_| invalid(&format!("bad PAX {key} {text:?}")))
                        };
                        match key.as_str() {
                            "path" => entry.name = value.clone(),
                            "linkpath" => entry.link = value.clone(),
                            "size" => entry.size = number()?,
                            "uid" => entry.uid = number()?,
                            "gid" => entry.gid = number()?,
                            "mtime" => {
                                let text = String::from_utf8_lossy(&value).into_owned();
                                let whole = text.split('.').next().unwrap_or("");
                                entry.mtime =
                                    whole.parse().map_err(|_| invalid("bad PAX mtime"))?;
                            }
                            _ => {}
                        }
                    }
                    while entry.name.len() > 1 && entry.name.ends_with(b"/") {
                        entry.name.pop();
                    }
                    // Only regular files carry data; a size on anything else is skipped.
                    self.unread = entry.size;
                    self.padding = padding_of(entry.size);
                    if entry.kind != Kind::File {
                        self.skip_rest()?;
                        entry.size = 0;
                    }
                    return Ok(Some(entry));
                }
            }
        }
    }

    /// The current entry's data (exactly its size, then the padding is skipped later).
    pub fn data(&mut self) -> DataReader<'_, R> {
        DataReader { reader: self }
    }

    fn skip_rest(&mut self) -> io::Result<()> {
        let n = self.unread + self.padding;
        self.unread = 0;
        self.padding = 0;
        self.discard(n)
    }

    fn discard(&mut self, n: u64) -> io::Result<()> {
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
        if copied < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive ends inside an entry",
            ));
        }
        Ok(())
    }

    fn read_block(&mut self) -> io::Result<Option<[u8; BLOCK]>> {
        let mut block = [0u8; BLOCK];
        let mut filled = 0;
        while filled < BLOCK {
            match self.inner.read(&mut block[filled..]) {
                Ok(0) if filled == 0 => return Ok(None),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "archive ends inside a header",
                    ));
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(block))
    }
}

pub struct DataReader<'a, R> {
    reader: &'a mut Reader<R>,
}

impl<R: Read> Read for DataReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.reader.unread == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.reader.unread).unwrap_or(usize::MAX));
        let n = self.reader.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive ends inside a file",
            ));
        }
        self.reader.unread -= n as u64;
        Ok(n)
    }
}

/// Over a buffered input, the data can be taken where it lies (`fill_buf`/`consume`) instead
/// of being copied out first: a download writes from the received chunks straight to disk.
impl<R: BufRead> BufRead for DataReader<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let unread = self.reader.unread;
        if unread == 0 {
            return Ok(&[]);
        }
        let buf = self.reader.inner.fill_buf()?;
        if buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive ends inside a file",
            ));
        }
        let max = buf.len().min(usize::try_from(unread).unwrap_or(usize::MAX));
        Ok(&buf[..max])
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(usize::try_from(self.reader.unread).unwrap_or(usize::MAX));
        self.reader.inner.consume(n);
        self.reader.unread -= n as u64;
    }
}

fn padding_of(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn header_name(block: &[u8; BLOCK]) -> Vec<u8> {
    let name = trim_nul(&block[0..100]);
    // The prefix field exists in POSIX ustar only; GNU headers use those bytes otherwise.
    let prefix = if &block[257..263] == b"ustar\0" {
        trim_nul(&block[345..500])
    } else {
        &[]
    };
    if prefix.is_empty() {
        name.to_vec()
    } else {
        let mut full = prefix.to_vec();
        full.push(b'/');
        full.extend_from_slice(name);
        full
    }
}

fn trim_nul(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())]
}

fn verify_checksum(block: &[u8; BLOCK]) -> io::Result<()> {
    let stored = parse_number(&block[148..156])?;
    let spaces = 8 * u32::from(b' ');
    let unsigned: u32 = block[..148]
        .iter()
        .chain(&block[156..])
        .map(|&b| u32::from(b))
        .sum::<u32>()
        + spaces;
    let signed: i64 = block[..148]
        .iter()
        .chain(&block[156..])
        .map(|&b| i64::from(b as i8))
        .sum::<i64>()
        + i64::from(spaces);
    if stored == u64::from(unsigned) || stored as i64 == signed {
        Ok(())
    } else {
        Err(invalid(
            "bad header checksum (not a tar archive, or a corrupt one)",
        ))
    }
}

/// Octal (space/NUL padded) or GNU base-256 (high bit of the first byte set).
fn parse_number(field: &[u8]) -> io::Result<u64> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        if field[0] & 0x40 != 0 {
            return Err(invalid("negative base-256 number"));
        }
        let mut value: u64 = u64::from(field[0] & 0x3f);
        for &b in &field[1..] {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(|| invalid("number too large"))?;
        }
        return Ok(value);
    }
    let text: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|&b| b != 0 && b != b' ')
        .collect();
    if text.is_empty() {
        return Ok(0);
    }
    let text = std::str::from_utf8(&text).map_err(|_| invalid("bad number in header"))?;
    u64::from_str_radix(text, 8)
        .map_err(|_| invalid(&format!("bad octal number {text:?} in header")))
}

fn parse_pax(data: &[u8]) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut records = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| invalid("bad PAX record"))?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&len| len > space + 1 && len <= rest.len())
            .ok_or_else(|| invalid("bad PAX record length"))?;
        let record = &rest[space + 1..len];
        let record = record
            .strip_suffix(b"\n")
            .ok_or_else(|| invalid("PAX record without newline"))?;
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| invalid("PAX record without '='"))?;
        records.push((
            String::from_utf8_lossy(&record[..eq]).into_owned(),
            record[eq + 1..].to_vec(),
        ));
        rest = &rest[len..];
    }
    Ok(records)
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_below_the_destination_or_are_refused() {
        assert_eq!(
            name_components(b"./etc//app/./config.yaml"),
            Ok(vec![
                b"etc".to_vec(),
                b"app".to_vec(),
                b"config.yaml".to_vec()
            ])
        );
        assert_eq!(name_components(b"."), Ok(vec![]));
        assert_eq!(name_components(b"/etc/passwd"), Err(UnsafeName::Absolute));
        assert_eq!(name_components(b"a/../../b"), Err(UnsafeName::Parent));
        assert_eq!(name_components(b"a\0b"), Err(UnsafeName::Nul));
    }

    fn entry(name: &str, kind: Kind, size: u64) -> Entry {
        Entry {
            name: name.into(),
            kind,
            mode: 0o644,
            uid: 65532,
            gid: 65532,
            size,
            mtime: 1_700_000_000,
            link: Vec::new(),
        }
    }

    fn archive(entries: &[(Entry, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (e, data) in entries {
            write_header(&mut out, e).unwrap();
            out.extend_from_slice(data);
            write_padding(&mut out, data.len() as u64).unwrap();
        }
        write_end(&mut out).unwrap();
        out
    }

    fn read_all(bytes: &[u8]) -> Vec<(Entry, Vec<u8>)> {
        let mut reader = Reader::new(bytes);
        let mut out = Vec::new();
        while let Some(e) = reader.next_entry().unwrap() {
            let mut data = Vec::new();
            reader.data().read_to_end(&mut data).unwrap();
            out.push((e, data));
        }
        out
    }

    #[test]
    fn round_trip_of_every_kind_and_the_pax_cases() {
        let long = format!("{}/file.txt", "d".repeat(150));
        let mut big_ids = entry("ids", Kind::File, 3);
        big_ids.uid = 4_000_000_000;
        big_ids.gid = 3_000_000;
        big_ids.mtime = -5;
        let mut link = entry("link", Kind::Symlink, 0);
        link.link = "/etc/app/v2".into();
        let mut long_link = entry("longlink", Kind::Symlink, 0);
        long_link.link = "x".repeat(300).into_bytes();
        let mut hard = entry("hard", Kind::HardLink, 0);
        hard.link = "a.txt".into();
        let mut dir = entry("dir", Kind::Directory, 0);
        dir.mode = 0o755;
        let entries = vec![
            (entry("a.txt", Kind::File, 5), b"hello".to_vec()),
            (dir, Vec::new()),
            (entry(&long, Kind::File, 600), vec![7u8; 600]),
            (big_ids, b"abc".to_vec()),
            (link, Vec::new()),
            (long_link, Vec::new()),
            (hard, Vec::new()),
            (entry("empty", Kind::File, 0), Vec::new()),
        ];
        let bytes = archive(&entries);
        assert_eq!(bytes.len() % BLOCK, 0);
        assert_eq!(read_all(&bytes), entries);
    }

    #[test]
    fn data_taken_where_it_lies_stops_at_the_entry_and_at_a_cut() {
        let entries = vec![
            (entry("a", Kind::File, 700), vec![1u8; 700]),
            (entry("b", Kind::File, 5), b"hello".to_vec()),
        ];
        let bytes = archive(&entries);
        // A 100-byte buffer: the slices straddle headers, data and padding.
        let mut reader = Reader::new(io::BufReader::with_capacity(100, &bytes[..]));
        let mut got = Vec::new();
        while let Some(e) = reader.next_entry().unwrap() {
            let mut data = Vec::new();
            let mut taking = reader.data();
            loop {
                let slice = taking.fill_buf().unwrap();
                if slice.is_empty() {
                    break;
                }
                let n = slice.len().min(64);
                data.extend_from_slice(&slice[..n]);
                taking.consume(n);
            }
            got.push((e, data));
        }
        assert_eq!(got, entries);

        let mut cut = Reader::new(&bytes[..BLOCK + 300]);
        cut.next_entry().unwrap();
        let mut taking = cut.data();
        let n = taking.fill_buf().unwrap().len();
        assert_eq!(n, 300);
        taking.consume(n);
        let err = taking.fill_buf().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        assert_eq!(pax_record("path", b"a"), b"9 path=a\n");
        // Around the points where the length gains a digit.
        for n in 0..1100 {
            let record = pax_record("path", &vec![b'x'; n]);
            let space = record.iter().position(|&b| b == b' ').unwrap();
            let stated: usize = std::str::from_utf8(&record[..space])
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(stated, record.len(), "value of {n} bytes");
        }
    }

    #[test]
    fn reads_gnu_long_names_and_base256() {
        // What GNU tar and the Rust tar crate write for a long name: an `L` member first.
        let long = "n".repeat(120);
        let mut out = Vec::new();
        let mut l = entry("././@LongLink", Kind::Other(b'L'), long.len() as u64 + 1);
        l.uid = 0;
        out.extend_from_slice(&ustar_block(&l, &l.name));
        let mut data = long.clone().into_bytes();
        data.push(0);
        out.extend_from_slice(&data);
        write_padding(&mut out, data.len() as u64).unwrap();
        let mut block = ustar_block(&entry("short", Kind::File, 0), b"short");
        block[108..116].copy_from_slice(&[0x80, 0, 0, 0, 0xee, 0x6b, 0x28, 0x00]); // uid 4000000000
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block.iter().map(|&x| u32::from(x)).sum();
        put_octal(&mut block[148..155], u64::from(sum));
        out.extend_from_slice(&block);
        write_end(&mut out).unwrap();
        let entries = read_all(&out);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].0.name, long.as_bytes());
        assert_eq!(entries[0].0.uid, 4_000_000_000);
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let mut bytes = archive(&[(entry("a", Kind::File, 5), b"hello".to_vec())]);
        bytes[10] ^= 0xff;
        assert!(Reader::new(&bytes[..]).next_entry().is_err());
        assert!(Reader::new(&b"not a tar"[..]).next_entry().is_err());
        let good = archive(&[(entry("a", Kind::File, 5), b"hello".to_vec())]);
        let mut reader = Reader::new(&good[..600]);
        let _ = reader.next_entry();
        let mut sink = Vec::new();
        assert!(reader.data().read_to_end(&mut sink).is_ok() || sink.len() < 5);
        for cut in (0..good.len()).step_by(97) {
            let mut reader = Reader::new(&good[..cut]);
            while let Ok(Some(_)) = reader.next_entry() {
                let _ = io::copy(&mut reader.data(), &mut io::sink());
            }
        }
        assert_eq!(Reader::new(&[][..]).next_entry().unwrap(), None);
    }
}

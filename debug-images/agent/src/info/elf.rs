//! Just enough ELF to tell a Go binary: the `.go.buildinfo` section and the Go version in it.
//!
//! Go's linker writes a `.go.buildinfo` section starting with the 14-byte magic
//! `\xff Go buildinf:`, then pointer size and flags; with flag bit 2 (Go 1.18+) the version
//! string follows at offset 32, length-prefixed by a uvarint (see Go's
//! `debug/buildinfo.Read`). Binaries without section headers are scanned for the magic at
//! 16-byte alignment, as Go's own reader does.

use std::io::{self, Read, Seek, SeekFrom};

pub const BUILDINFO_MAGIC: &[u8; 14] = b"\xff Go buildinf:";
const SECTION_NAME: &[u8] = b".go.buildinfo";
const SHT_NOBITS: u32 = 8;
/// Upper bound for the section-header table and the string table we read.
const MAX_TABLE: u64 = 16 << 20;
/// Upper bound for the fallback scan of binaries without section headers.
const MAX_SCAN: u64 = 512 << 20;

#[derive(Debug, PartialEq, Eq)]
pub struct GoBuild {
    /// `go1.22.3`; `None` for pre-1.18 layouts that store it behind pointers.
    pub version: Option<String>,
}

/// `Ok(None)`: an ELF file that is not a Go binary. `Err`: unreadable or not ELF.
pub fn go_build_info<R: Read + Seek>(file: &mut R) -> io::Result<Option<GoBuild>> {
    let mut ident = [0u8; 64];
    file.seek(SeekFrom::Start(0))?;
    read_up_to(file, &mut ident)?;
    if &ident[..4] != b"\x7fELF" {
        return Err(invalid("not an ELF file"));
    }
    let elf = Layout::from_ident(&ident)?;
    let sections = elf.sections(file, &ident)?;
    if sections.is_empty() {
        return scan_for_magic(file);
    }
    let strtab_index = elf.shstrndx(&ident, &sections);
    let strtab = sections
        .get(strtab_index)
        .ok_or_else(|| invalid("bad section name index"))?;
    let names = read_at(file, strtab.offset, strtab.size.min(MAX_TABLE))?;
    for section in &sections {
        let name = names.get(section.name as usize..).unwrap_or_default();
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if name == SECTION_NAME && section.kind != SHT_NOBITS {
            let header = read_at(file, section.offset, section.size.min(32 + 10 + 64))?;
            return Ok(parse_buildinfo(&header));
        }
    }
    Ok(None)
}

/// The section's first bytes → `Some` when the magic is there.
pub fn parse_buildinfo(data: &[u8]) -> Option<GoBuild> {
    if data.len() < 16 || &data[..14] != BUILDINFO_MAGIC {
        return None;
    }
    let flags = data[15];
    let version = (flags & 2 != 0)
        .then(|| {
            let (len, used) = uvarint(data.get(32..)?)?;
            let start = 32 + used;
            let bytes = data.get(start..start.checked_add(usize::try_from(len).ok()?)?)?;
            String::from_utf8(bytes.to_vec()).ok()
        })
        .flatten();
    Some(GoBuild { version })
}

fn uvarint(data: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in data.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

struct Section {
    name: u32,
    kind: u32,
    offset: u64,
    size: u64,
    link: u32,
}

struct Layout {
    is64: bool,
    little: bool,
}

impl Layout {
    fn from_ident(ident: &[u8; 64]) -> io::Result<Layout> {
        let is64 = match ident[4] {
            1 => false,
            2 => true,
            _ => return Err(invalid("unknown ELF class")),
        };
        let little = match ident[5] {
            1 => true,
            2 => false,
            _ => return Err(invalid("unknown ELF byte order")),
        };
        Ok(Layout { is64, little })
    }

    fn u16(&self, b: &[u8], at: usize) -> u64 {
        let v = [b[at], b[at + 1]];
        u64::from(if self.little {
            u16::from_le_bytes(v)
        } else {
            u16::from_be_bytes(v)
        })
    }

    fn u32(&self, b: &[u8], at: usize) -> u64 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        u64::from(if self.little {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        })
    }

    fn u64(&self, b: &[u8], at: usize) -> u64 {
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[at..at + 8]);
        if self.little {
            u64::from_le_bytes(v)
        } else {
            u64::from_be_bytes(v)
        }
    }

    /// A pointer-sized field: `off32` in ELF32, `off64` in ELF64.
    fn word(&self, b: &[u8], off32: usize, off64: usize) -> u64 {
        if self.is64 {
            self.u64(b, off64)
        } else {
            self.u32(b, off32)
        }
    }

    fn sections<R: Read + Seek>(&self, file: &mut R, ident: &[u8; 64]) -> io::Result<Vec<Section>> {
        let shoff = self.word(ident, 0x20, 0x28);
        let (entsize, mut count) = if self.is64 {
            (self.u16(ident, 0x3A), self.u16(ident, 0x3C))
        } else {
            (self.u16(ident, 0x2E), self.u16(ident, 0x30))
        };
        let min_entsize = if self.is64 { 64 } else { 40 };
        if shoff == 0 || entsize < min_entsize {
            return Ok(Vec::new());
        }
        if count == 0 {
            // More than 0xff00 sections: the real count is in section 0's sh_size.
            let first = read_at(file, shoff, entsize)?;
            count = self.section(&first).size;
        }
        let table_len = count.checked_mul(entsize).filter(|&n| n <= MAX_TABLE);
        let table = read_at(
            file,
            shoff,
            table_len.ok_or_else(|| invalid("section table too large"))?,
        )?;
        Ok(table
            .chunks_exact(entsize as usize)
            .map(|raw| self.section(raw))
            .collect())
    }

    fn section(&self, raw: &[u8]) -> Section {
        if raw.len() < if self.is64 { 64 } else { 40 } {
            return Section {
                name: 0,
                kind: 0,
                offset: 0,
                size: 0,
                link: 0,
            };
        }
        Section {
            name: self.u32(raw, 0) as u32,
            kind: self.u32(raw, 4) as u32,
            offset: self.word(raw, 16, 24),
            size: self.word(raw, 20, 32),
            link: if self.is64 {
                self.u32(raw, 40)
            } else {
                self.u32(raw, 24)
            } as u32,
        }
    }

    fn shstrndx(&self, ident: &[u8; 64], sections: &[Section]) -> usize {
        let index = if self.is64 {
            self.u16(ident, 0x3E)
        } else {
            self.u16(ident, 0x32)
        };
        if index == 0xffff {
            // SHN_XINDEX: the real index is in section 0's sh_link.
            return sections.first().map_or(0, |s| s.link as usize);
        }
        index as usize
    }
}

fn scan_for_magic<R: Read + Seek>(file: &mut R) -> io::Result<Option<GoBuild>> {
    file.seek(SeekFrom::Start(0))?;
    let mut chunk = vec![0u8; 1 << 20];
    let mut scanned = 0u64;
    while scanned < MAX_SCAN {
        let n = read_up_to(file, &mut chunk)?;
        if n < 16 {
            return Ok(None);
        }
        // Chunks are 16-aligned in the file, so 16-aligned offsets within them are too.
        for at in (0..n - 15).step_by(16) {
            if &chunk[at..at + 14] == BUILDINFO_MAGIC {
                let mut header = chunk[at..n.min(at + 32 + 10 + 64)].to_vec();
                if header.len() < 106 {
                    let mut more = vec![0u8; 106 - header.len()];
                    let m = read_up_to(file, &mut more)?;
                    header.extend_from_slice(&more[..m]);
                }
                return Ok(parse_buildinfo(&header));
            }
        }
        scanned += n as u64;
        if n < chunk.len() {
            break;
        }
    }
    Ok(None)
}

fn read_at<R: Read + Seek>(file: &mut R, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    let len = usize::try_from(len).map_err(|_| invalid("length too large"))?;
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len];
    let n = read_up_to(file, &mut buf)?;
    if n < len {
        return Err(invalid("truncated ELF file"));
    }
    Ok(buf)
}

fn read_up_to<R: Read>(file: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

/// Builds small ELF files for tests: a header, a string table and the given sections.
#[cfg(test)]
pub mod fixture {
    /// `sections`: (name, contents). `is64`/`little` choose the layout.
    pub fn elf(is64: bool, little: bool, sections: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let put16 = |v: u16| {
            if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        let put32 = |v: u32| {
            if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        let put64 = |v: u64| {
            if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        let word = |v: u64| {
            if is64 {
                put64(v).to_vec()
            } else {
                put32(v as u32).to_vec()
            }
        };

        let mut names = vec![0u8];
        let mut name_offsets = Vec::new();
        for (name, _) in sections.iter().chain([&(".shstrtab", Vec::new())]) {
            name_offsets.push(names.len() as u32);
            names.extend_from_slice(name.as_bytes());
            names.push(0);
        }
        let header_len = if is64 { 64 } else { 52 };
        let mut body = Vec::new();
        let mut placed = Vec::new();
        for (_, data) in sections {
            placed.push((header_len + body.len(), data.len()));
            body.extend_from_slice(data);
        }
        placed.push((header_len + body.len(), names.len()));
        body.extend_from_slice(&names);
        while body.len() % 8 != 0 {
            body.push(0);
        }
        let shoff = header_len + body.len();
        let entsize: u16 = if is64 { 64 } else { 40 };
        let count = sections.len() + 2; // null section + ours + .shstrtab

        let mut out = vec![
            0x7f,
            b'E',
            b'L',
            b'F',
            if is64 { 2 } else { 1 },
            if little { 1 } else { 2 },
            1,
        ];
        out.resize(16, 0);
        out.extend_from_slice(&put16(2)); // e_type EXEC
        out.extend_from_slice(&put16(62)); // e_machine
        out.extend_from_slice(&put32(1)); // e_version
        out.extend(word(0)); // e_entry
        out.extend(word(0)); // e_phoff
        out.extend(word(shoff as u64)); // e_shoff
        out.extend_from_slice(&put32(0)); // e_flags
        out.extend_from_slice(&put16(header_len as u16));
        out.extend_from_slice(&put16(0)); // e_phentsize
        out.extend_from_slice(&put16(0)); // e_phnum
        out.extend_from_slice(&put16(entsize));
        out.extend_from_slice(&put16(count as u16));
        out.extend_from_slice(&put16((count - 1) as u16)); // e_shstrndx
        assert_eq!(out.len(), header_len);
        out.extend_from_slice(&body);

        out.extend(vec![0u8; entsize as usize]); // null section
        for (i, (offset, size)) in placed.iter().enumerate() {
            let kind = if i == placed.len() - 1 { 3 } else { 1 }; // STRTAB / PROGBITS
            let start = out.len();
            out.extend_from_slice(&put32(name_offsets[i]));
            out.extend_from_slice(&put32(kind));
            out.extend(word(0)); // sh_flags
            out.extend(word(0)); // sh_addr
            out.extend(word(*offset as u64));
            out.extend(word(*size as u64));
            out.resize(start + entsize as usize, 0);
        }
        out
    }

    /// The start of a Go 1.18+ `.go.buildinfo` section carrying `version`.
    pub fn buildinfo(version: &str) -> Vec<u8> {
        let mut data = super::BUILDINFO_MAGIC.to_vec();
        data.push(8); // pointer size
        data.push(2); // flags: inline strings
        data.resize(32, 0);
        data.push(version.len() as u8);
        data.extend_from_slice(version.as_bytes());
        data.push(0);
        data.push(0);
        data
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::{buildinfo, elf};
    use super::*;
    use std::io::Cursor;

    fn detect(bytes: Vec<u8>) -> io::Result<Option<GoBuild>> {
        go_build_info(&mut Cursor::new(bytes))
    }

    #[test]
    fn finds_go_version_in_every_layout() {
        for (is64, little) in [(true, true), (false, true), (true, false), (false, false)] {
            let file = elf(
                is64,
                little,
                &[
                    (".text", vec![0x90; 40]),
                    (".go.buildinfo", buildinfo("go1.22.3")),
                ],
            );
            assert_eq!(
                detect(file).unwrap(),
                Some(GoBuild {
                    version: Some("go1.22.3".into())
                }),
                "is64={is64} little={little}"
            );
        }
    }

    #[test]
    fn an_elf_without_the_section_is_not_go() {
        let file = elf(
            true,
            true,
            &[
                (".text", vec![0x90; 40]),
                (".data", b"\xff Go buildinf: in data".to_vec()),
            ],
        );
        assert_eq!(detect(file).unwrap(), None);
    }

    #[test]
    fn section_without_magic_is_not_go() {
        let file = elf(true, true, &[(".go.buildinfo", vec![0; 48])]);
        assert_eq!(detect(file).unwrap(), None);
    }

    #[test]
    fn old_layout_is_go_without_version() {
        let mut info = buildinfo("go1.17");
        info[15] = 0;
        let file = elf(true, true, &[(".go.buildinfo", info)]);
        assert_eq!(detect(file).unwrap(), Some(GoBuild { version: None }));
    }

    #[test]
    fn stripped_of_section_headers_falls_back_to_scanning() {
        let mut file = elf(true, true, &[]);
        file.truncate(64);
        // e_shoff = 0: no section headers at all.
        file[0x28..0x30].copy_from_slice(&0u64.to_le_bytes());
        file.resize(4096, 0);
        file.extend_from_slice(&buildinfo("go1.21.0"));
        assert_eq!(
            detect(file).unwrap(),
            Some(GoBuild {
                version: Some("go1.21.0".into())
            })
        );
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        assert!(detect(b"#!/bin/sh\necho hi\n".to_vec()).is_err());
        assert!(detect(Vec::new()).is_err());
        let file = elf(true, true, &[(".go.buildinfo", buildinfo("go1.22.3"))]);
        for cut in [5, 20, 63, 64, 100, file.len() - 10] {
            let _ = detect(file[..cut].to_vec());
        }
        let mut huge = elf(true, true, &[]);
        huge[0x3C..0x3E].copy_from_slice(&0xffffu16.to_le_bytes());
        assert!(detect(huge).is_err());
    }

    #[test]
    fn the_agent_itself_is_not_go() {
        let mut exe = std::fs::File::open("/proc/self/exe").unwrap();
        assert_eq!(go_build_info(&mut exe).unwrap(), None);
    }
}

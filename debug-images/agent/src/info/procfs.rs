//! Parsers for the `/proc/<pid>` files `info` reads. Pure functions over text, so every
//! format quirk (hex little-endian addresses, octal escapes in mount paths) is unit-tested.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

/// The lines of `/proc/<pid>/status` that `info` uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub name: Option<String>,
    /// Effective uid (second column of `Uid:`): what permission checks use.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Vec<u32>,
}

pub fn parse_status(text: &str) -> Status {
    let mut status = Status::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let mut numbers = value
            .split_whitespace()
            .filter_map(|v| v.parse::<u32>().ok());
        match key {
            "Name" => status.name = Some(value.trim().to_string()),
            "Uid" => status.uid = numbers.nth(1),
            "Gid" => status.gid = numbers.nth(1),
            "Groups" => status.groups = numbers.collect(),
            _ => {}
        }
    }
    status
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listener {
    pub proto: &'static str,
    pub addr: String,
    pub port: u16,
}

/// TCP `LISTEN` sockets (state `0A`) or bound UDP sockets (state `07`, no peer) from
/// `/proc/<pid>/net/{tcp,tcp6,udp,udp6}`.
pub fn parse_net(text: &str, proto: &'static str) -> Vec<Listener> {
    let want_state = if proto == "tcp" { "0A" } else { "07" };
    let mut found = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, local, remote, state, ..] = fields[..] else {
            continue;
        };
        if state != want_state {
            continue;
        }
        if proto == "udp" && !remote_is_unset(remote) {
            continue;
        }
        if let Some((addr, port)) = parse_hex_endpoint(local) {
            let listener = Listener { proto, addr, port };
            if !found.contains(&listener) {
                found.push(listener);
            }
        }
    }
    found
}

fn remote_is_unset(remote: &str) -> bool {
    remote
        .split(':')
        .all(|part| part.bytes().all(|b| b == b'0'))
}

/// `0100007F:1F90` → (`127.0.0.1`, 8080). The address is the kernel's in-memory value
/// printed as 32-bit words in host byte order (little-endian on every arch we ship).
pub fn parse_hex_endpoint(text: &str) -> Option<(String, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Option<Vec<u32>> = (0..addr.len() / 8)
        .map(|i| {
            addr.get(i * 8..i * 8 + 8)
                .and_then(|w| u32::from_str_radix(w, 16).ok())
        })
        .collect();
    let words = words?;
    let addr = match (addr.len(), words.as_slice()) {
        (8, [w]) => Ipv4Addr::from(w.swap_bytes()).to_string(),
        (32, [a, b, c, d]) => {
            let mut octets = [0u8; 16];
            for (i, w) in [a, b, c, d].into_iter().enumerate() {
                octets[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            Ipv6Addr::from(octets).to_string()
        }
        _ => return None,
    };
    Some((addr, port))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub path: String,
    pub fstype: String,
    pub source: String,
    pub options: String,
}

/// `/proc/<pid>/mountinfo`: `id parent major:minor root mountpoint options [optional...] -
/// fstype source superoptions`. Paths escape space, tab, newline and backslash in octal.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if dash < 6 || fields.len() < dash + 3 {
            continue;
        }
        mounts.push(Mount {
            path: unescape_octal(fields[4]),
            options: fields[5].to_string(),
            fstype: fields[dash + 1].to_string(),
            source: unescape_octal(fields[dash + 2]),
        });
    }
    mounts
}

/// `\040` → space, as the kernel's `seq_file` escaping writes it.
pub fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = (bytes[i + 1] - b'0') as u32 * 64
                + (bytes[i + 2] - b'0') as u32 * 8
                + (bytes[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Names of `NAME=value` entries of `/proc/<pid>/environ`; values never leave this function.
pub fn env_names(raw: &[u8]) -> Vec<String> {
    raw.split(|&b| b == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let name = entry.split(|&b| b == b'=').next().unwrap_or_default();
            String::from_utf8_lossy(name).into_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tserver\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t1\n\
        Uid:\t65532\t65532\t65532\t65532\nGid:\t65533\t65534\t65534\t65534\nGroups:\t65534 10 \n";

    #[test]
    fn status_gives_effective_ids_and_groups() {
        assert_eq!(
            parse_status(STATUS),
            Status {
                name: Some("server".into()),
                uid: Some(65532),
                gid: Some(65534),
                groups: vec![65534, 10]
            }
        );
        assert_eq!(parse_status("Groups:\t\n"), Status::default());
    }

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65532        0 1234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65532        0 1235 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D2F4 01 00000000:00000000 00:00000000 00000000 65532        0 1236 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn tcp_listeners_only_and_decoded() {
        assert_eq!(
            parse_net(TCP, "tcp"),
            vec![
                Listener {
                    proto: "tcp",
                    addr: "0.0.0.0".into(),
                    port: 8080
                },
                Listener {
                    proto: "tcp",
                    addr: "127.0.0.1".into(),
                    port: 3306
                },
            ]
        );
    }

    #[test]
    fn tcp6_addresses() {
        let tcp6 = "  sl  local_address                         remote_address                        st\n\
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 0\n\
   1: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 0\n\
   2: 0000000000000000FFFF00000100007F:0051 00000000000000000000000000000000:0000 0A 0\n";
        let found = parse_net(tcp6, "tcp");
        assert_eq!(found[0].addr, "::");
        assert_eq!(
            found[1],
            Listener {
                proto: "tcp",
                addr: "::1".into(),
                port: 80
            }
        );
        assert_eq!(found[2].addr, "::ffff:127.0.0.1");
    }

    #[test]
    fn udp_bound_sockets_without_peer() {
        let udp = "  sl  local_address rem_address   st\n\
   0: 00000000:0035 00000000:0000 07 0\n\
   1: 0100007F:0036 0200007F:0035 01 0\n";
        assert_eq!(
            parse_net(udp, "udp"),
            vec![Listener {
                proto: "udp",
                addr: "0.0.0.0".into(),
                port: 53
            }]
        );
    }

    #[test]
    fn garbage_lines_are_skipped_not_fatal() {
        assert!(parse_net("header\nnot a socket line\n 0: zz:zz 0:0 0A\n", "tcp").is_empty());
        assert_eq!(parse_hex_endpoint("0100007F"), None);
        assert_eq!(parse_hex_endpoint("01007F:0050"), None);
    }

    #[test]
    fn mountinfo_with_optional_fields_and_escapes() {
        let text = "22 1 0:21 / / rw,relatime shared:1 master:2 - overlay overlay rw,lowerdir=/x\n\
            30 22 8:1 /vol /data\\040dir ro,nosuid - ext4 /dev/sda1 rw\n\
            broken line\n";
        assert_eq!(
            parse_mountinfo(text),
            vec![
                Mount {
                    path: "/".into(),
                    fstype: "overlay".into(),
                    source: "overlay".into(),
                    options: "rw,relatime".into()
                },
                Mount {
                    path: "/data dir".into(),
                    fstype: "ext4".into(),
                    source: "/dev/sda1".into(),
                    options: "ro,nosuid".into()
                },
            ]
        );
    }

    #[test]
    fn environ_gives_names_only() {
        assert_eq!(
            env_names(b"PATH=/bin\0SECRET=hunter2\0EMPTY=\0"),
            vec!["PATH", "SECRET", "EMPTY"]
        );
    }

    #[test]
    fn octal_unescape_edge_cases() {
        assert_eq!(unescape_octal("a\\134b"), "a\\b");
        assert_eq!(unescape_octal("trailing\\04"), "trailing\\04");
        assert_eq!(unescape_octal("\\999"), "\\999");
    }
}

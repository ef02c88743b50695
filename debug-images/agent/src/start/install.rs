//! `install DEST`: copy this very binary to DEST, so that an image without the agent (the
//! target's) can run it from a shared volume.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::exit::Status;

pub fn main(dest: &Path) -> Status {
    match install(Path::new("/proc/self/exe"), dest) {
        Ok(()) => Status::Success,
        Err(e) => {
            eprintln!(
                "distroless-debug-agent: install: cannot write {}: {e}; the directory must \
                 exist and be writable by uid {}",
                dest.display(),
                crate::sys::effective_uid()
            );
            Status::Failure
        }
    }
}

/// Copies `source` to `dest`, mode 0755, atomically: a reader of `dest` (the target
/// container starting) sees either no file or the whole binary, never a partial one.
pub fn install(source: &Path, dest: &Path) -> io::Result<()> {
    let name = dest
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "DEST names no file"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = dest.with_file_name(temp_name);
    let written = (|| {
        fs::copy(source, &temp)?;
        fs::set_permissions(&temp, fs::Permissions::from_mode(0o755))?;
        fs::File::open(&temp)?.sync_all()?;
        fs::rename(&temp, dest)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn installs_an_executable_copy_and_replaces_an_older_one() {
        let dir = std::env::temp_dir().join(format!("agent-install-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let source = dir.join("source");
        fs::write(&source, b"new binary").unwrap();
        let dest = dir.join("agent");
        fs::write(&dest, b"old").unwrap();
        install(&source, &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new binary");
        assert_eq!(fs::metadata(&dest).unwrap().mode() & 0o777, 0o755);
        let names: Vec<_> = fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
        let missing = install(&source, &dir.join("no/such/dir/agent"));
        assert!(missing.is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}

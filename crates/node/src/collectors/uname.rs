//! `uname`: the uname(2) system call as one info series.

use crate::Node;
use crate::error::{CollectError, Result};
use crate::out::Out;

pub(crate) fn collect(_node: &Node, out: &mut Out) -> Result {
    let u = nix::sys::utsname::uname().map_err(|e| CollectError::Failed(format!("uname: {e}")))?;
    let s = |o: &std::ffi::OsStr| o.to_string_lossy().into_owned();
    out.gauge(
        "node_uname_info",
        "Labeled system information as provided by the uname system call.",
        &[
            ("sysname", &s(u.sysname())),
            ("release", &s(u.release())),
            ("version", &s(u.version())),
            ("machine", &s(u.machine())),
            ("nodename", &s(u.nodename())),
            ("domainname", &s(u.domainname())),
        ],
        1.0,
    );
    Ok(())
}

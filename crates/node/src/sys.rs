//! The one system call without a safe wrapper in our dependencies.
#![allow(unsafe_code)]

/// The kernel's clock discipline state, read with `adjtimex(2)` and `modes = 0`, which
/// changes nothing. Returns the clock state (`TIME_OK`, ...) and the structure.
pub(crate) fn adjtimex() -> std::io::Result<(i32, libc::timex)> {
    // SAFETY: `timex` is plain old data, so all-zero is a valid value; with `modes` 0
    // the kernel only writes into the structure we own, and nothing outlives the call.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `tx` is a valid, exclusively borrowed `timex` for the duration of the call.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((state, tx))
}

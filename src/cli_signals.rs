//! How the CLI treats SIGPIPE. A closed stdout (`scimbridge audit … | head -1`) must end a
//! command quietly, as it ends other Unix tools, instead of a `Broken pipe` panic at the next
//! print: so SIGPIPE gets back its default action (Rust programs ignore it). But a server that
//! closes a connection while the CLI writes to it must be an error the CLI reports, never a
//! silent death: so every thread that touches a socket (the runtime's workers, where the CLI's
//! HTTP calls run) blocks SIGPIPE, and the write fails with EPIPE there instead. Prints happen on
//! the main thread only. Not for `serve`, whose sockets must never end the process.

/// Restores SIGPIPE's default action (call first, before any thread exists).
pub fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: resetting a signal's disposition at start, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Blocks SIGPIPE in the calling thread: a write to a closed socket returns EPIPE instead.
pub fn shield_this_thread() {
    #[cfg(unix)]
    // SAFETY: changes only the calling thread's signal mask, from a set built on the stack.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// The CLI's runtime: the command runs on the calling (main) thread, which prints; network
/// calls are spawned onto its worker, whose SIGPIPE is blocked (see the module header).
///
/// # Errors
/// When the runtime cannot start.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_start(shield_this_thread)
        .enable_all()
        .build()
}

/// Runs `f` on a runtime worker (for any future that writes to sockets).
///
/// # Errors
/// When the task panicked or was cancelled.
pub async fn off_main_thread<F>(f: F) -> anyhow::Result<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(f).await.map_err(|e| anyhow::anyhow!("the network task failed: {e}"))
}

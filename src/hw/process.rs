//! The one child-process runner of `hw/`: runs a tool (a capture tool, a CUPS command) with a hard
//! time limit, never through a shell, and signals process groups with a syscall.
//!
//! Tools hang in the field (gphoto2 waiting for an autofocus that never locks, a camera that went to
//! sleep, `lpstat` against a scheduler that accepts the connection and never answers), and some fork
//! helpers. So the child gets its own process group and a timeout kills the whole group, not just the
//! process we started: a helper left behind would keep the USB device claimed and make every later
//! capture fail with "Could not claim the USB device".

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Why a tool did not run to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunErrorKind {
    /// The program does not exist.
    NotFound,
    /// Still running at the time limit; its process group was killed.
    Timeout,
    /// It could not be started or waited for.
    Failed,
}

#[derive(Debug, Clone)]
pub struct RunError {
    pub kind: RunErrorKind,
    pub message: String,
}

impl RunError {
    fn new(kind: RunErrorKind, message: impl Into<String>) -> RunError {
        RunError {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RunError {}

/// How much of each of stdout and stderr is kept: the tail, where the tools print their errors.
/// gphoto2 with `--debug` in `extra_args` can print megabytes; we must drain it all but not keep it.
const KEEP_BYTES: usize = 64 * 1024;

/// How long to wait for stdout/stderr to close after the process ended. Normally they close at once;
/// if they do not, a descendant still holds them and is treated as a stray.
const PIPE_GRACE: Duration = Duration::from_millis(500);

/// The PATH used when this process has none (systemd always sets one; this is for odd launchers).
const FALLBACK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Where a tool is looked up and what environment it runs with.
///
/// Backends take one of these instead of reading the daemon's environment at capture time, so tests
/// can point each backend at its own fake tools without mutating the (shared, racy) process
/// environment.
#[derive(Debug, Clone)]
pub struct ToolEnv {
    /// Searched for the tool, and passed to it as its `PATH`.
    pub path: OsString,
    /// Extra variables for the tool, on top of the inherited environment.
    pub vars: Vec<(OsString, OsString)>,
}

impl ToolEnv {
    /// This process's `PATH` as it is now, no extra variables.
    pub fn inherited() -> ToolEnv {
        ToolEnv::with_path(std::env::var_os("PATH").unwrap_or_else(|| FALLBACK_PATH.into()))
    }

    /// An explicit search path (tests put their fake tools here).
    pub fn with_path(path: impl Into<OsString>) -> ToolEnv {
        ToolEnv {
            path: path.into(),
            vars: Vec::new(),
        }
    }

    /// Adds one variable for the tool.
    pub fn var(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> ToolEnv {
        self.vars.push((key.into(), value.into()));
        self
    }

    /// The first executable file called `name` in `path`. Empty and relative entries are skipped:
    /// they mean "the current directory", which for a daemon is wherever systemd started it.
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        std::env::split_paths(&self.path)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    }
}

impl Default for ToolEnv {
    fn default() -> ToolEnv {
        ToolEnv::inherited()
    }
}

fn is_executable(path: &Path) -> bool {
    // `metadata` follows symlinks, which matters: on Bookworm `libcamera-still` is a symlink.
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// How a finished (not timed-out) tool ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// The tail of stdout, lossily decoded.
    pub stdout: String,
    /// The tail of stderr, lossily decoded.
    pub stderr: String,
}

impl Finished {
    /// "exit status 1" or "killed by signal 9", for messages.
    pub fn describe_status(&self) -> String {
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "unknown exit status".to_string(),
        }
    }

    /// Both streams, for pattern matching: the tools do not agree on which one errors go to.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The last non-empty line of stderr (or stdout), short enough for a status line or a log.
    pub fn last_line(&self) -> String {
        last_line(&self.stderr)
            .or_else(|| last_line(&self.stdout))
            .unwrap_or_default()
    }
}

/// The last non-empty line, cut to a length that fits a log line.
pub fn last_line(text: &str) -> Option<String> {
    let line = text.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    Some(truncate_chars(line, 300))
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Runs `program args…` (never through a shell) with `env`, stdin closed, for at most `timeout`.
/// Its `argv[0]` is the program's file name, so its messages start "lp: …", not "/usr/bin/lp: …".
///
/// Errors: the program cannot be started → `NotFound` if it is missing, else `Failed`; it is still
/// running at `timeout` → its whole process group is killed and the error is `Timeout`. A non-zero
/// exit is not an error here: the caller reads the output to classify it.
pub fn run<A: AsRef<std::ffi::OsStr>>(
    program: &Path,
    args: &[A],
    env: &ToolEnv,
    timeout: Duration,
) -> Result<Finished, RunError> {
    let name = program
        .file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy()
        .into_owned();
    let mut cmd = command(program, args, env);
    cmd.stdout(Stdio::piped());
    let started = Instant::now();
    let mut child = spawn_command(cmd, program)?;
    let stdout = Capture::start(child.stdout.take(), "tool-stdout");
    let stderr = Capture::start(child.stderr.take(), "tool-stderr");

    let status = match wait_until(&mut child, started + timeout) {
        Ok(Some(status)) => status,
        Ok(None) => {
            // Still running. The child is not reaped yet, so its pid (= the group id) cannot have
            // been reused: killing the group here can only hit our own processes.
            kill_group(&mut child);
            let _ = child.wait();
            // Every process of the group is dead, so the pipes close; a descendant that moved to
            // another group is not waited for.
            let tail = last_line(&stderr.finish(PIPE_GRACE)).or_else(|| last_line(&stdout.finish(PIPE_GRACE)));
            let mut message = format!(
                "{name} was still running after {} s and was killed",
                timeout.as_secs_f32()
            );
            if let Some(tail) = tail {
                message.push_str(&format!(" (last output: {tail})"));
            }
            return Err(RunError::new(RunErrorKind::Timeout, message));
        }
        Err(e) => {
            kill_group(&mut child);
            let _ = child.wait();
            return Err(RunError::new(
                RunErrorKind::Failed,
                format!("cannot wait for {name}: {e}"),
            ));
        }
    };

    // The tool has exited. If its pipes stay open, something it started is still running and
    // holding them (a stray helper): kill the rest of the group. While any member lives the group id
    // stays allocated, so this cannot hit an unrelated process.
    if !(stdout.wait_closed(PIPE_GRACE) && stderr.wait_closed(PIPE_GRACE)) {
        tracing::warn!(tool = %name, "the tool left a process behind; killing its process group");
        signal_group(child.id(), libc::SIGKILL);
    }
    Ok(Finished {
        status,
        stdout: stdout.finish(PIPE_GRACE),
        stderr: stderr.finish(PIPE_GRACE),
    })
}

/// The command line as every tool runs: never through a shell, `env`'s PATH and variables, the C
/// locale, stdin closed, stderr piped, in a process group of its own.
fn command<A: AsRef<std::ffi::OsStr>>(program: &Path, args: &[A], env: &ToolEnv) -> Command {
    let name = program
        .file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy()
        .into_owned();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .arg0(&name)
        .env("PATH", &env.path)
        // Error patterns are matched in English; gphoto2 and the CUPS tools are translated, and a
        // booth in Tashkent may well run with a ru_RU or uz_UZ locale. With LC_ALL=C gettext also
        // ignores $LANGUAGE.
        .env("LANG", "C")
        .env("LC_ALL", "C")
        .env_remove("LANGUAGE")
        .envs(env.vars.iter().map(|(k, v)| (k.as_os_str(), v.as_os_str())))
        // A closed stdin turns any interactive prompt ("File exists. Overwrite?") into an error
        // instead of a hang.
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        // Its own group (pgid = its pid), so a timeout can kill every process it started.
        .process_group(0);
    cmd
}

/// Starting a tool, with the error a missing program gets.
fn spawn_command(mut cmd: Command, program: &Path) -> Result<Child, RunError> {
    cmd.spawn().map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            RunErrorKind::NotFound
        } else {
            RunErrorKind::Failed
        };
        RunError::new(kind, format!("cannot start {}: {e}", program.display()))
    })
}

/// A tool that runs until it is stopped (the live view): its stdout is the caller's to read, the
/// tail of its stderr is kept for the error message.
pub struct Streaming {
    child: Child,
    stderr: Capture,
}

/// Starts `program args…` like `run` does, but hands back its stdout instead of waiting.
pub fn spawn(program: &Path, args: &[OsString], env: &ToolEnv) -> Result<(Streaming, ChildStdout), RunError> {
    let mut cmd = command(program, args, env);
    cmd.stdout(Stdio::piped());
    let mut child = spawn_command(cmd, program)?;
    let stderr = Capture::start(child.stderr.take(), "live-stderr");
    let Some(stdout) = child.stdout.take() else {
        kill_group(&mut child);
        let _ = child.wait();
        return Err(RunError::new(RunErrorKind::Failed, "the live view tool has no stdout"));
    };
    Ok((Streaming { child, stderr }, stdout))
}

impl Streaming {
    /// The process group (= the tool's pid) to signal while the tool is not yet reaped.
    pub fn pgid(&self) -> u32 {
        self.child.id()
    }

    /// Reaps the tool once its stdout is done with: waits up to `grace` for it to exit, then
    /// kills its group. Returns how it ended, with the tail of stderr.
    pub fn finish(mut self, grace: Duration) -> Finished {
        let status = match wait_until(&mut self.child, Instant::now() + grace) {
            Ok(Some(status)) => Some(status),
            _ => None,
        };
        let status = match status {
            Some(status) => status,
            None => {
                kill_group(&mut self.child);
                self.child.wait().unwrap_or_else(|_| ExitStatus::from_raw(9))
            }
        };
        if !self.stderr.wait_closed(PIPE_GRACE) {
            kill_group_id(self.child.id());
        }
        Finished {
            status,
            stdout: String::new(),
            stderr: self.stderr.finish(PIPE_GRACE),
        }
    }
}

/// Polls until the child exits (`Some`) or `deadline` passes (`None`). Polling rather than a waiter
/// thread keeps the child unreaped until we have decided whether to kill its group.
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    // Short at first so a quick tool returns quickly, then relaxed: a capture takes seconds.
    let mut interval = Duration::from_millis(2);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(interval.min(deadline - now));
        interval = (interval * 2).min(Duration::from_millis(50));
    }
}

fn kill_group_id(pgid: u32) {
    signal_group(pgid, libc::SIGKILL);
}

/// SIGKILL to the child's whole process group, then to the child itself in case the group signal
/// failed (then only the child dies, which is still better than a hang).
fn kill_group(child: &mut Child) {
    signal_group(child.id(), libc::SIGKILL);
    let _ = child.kill();
}

/// Sends `signal` to every process in the group `pgid` (a child started here, which leads its own
/// group): `kill(-pgid, signal)`. Callers must only pass the id of a child they have not reaped yet,
/// so the id cannot have been reused by an unrelated process. An empty group (ESRCH) is not an error.
pub fn signal_group(pgid: u32, signal: libc::c_int) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    // Never 0 or 1: kill(0, …) would signal our own group and kill(-1, …) every process we may.
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(-pgid, signal) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            tracing::warn!(pgid, signal, error = %e, "cannot signal a child's process group");
        }
    }
}

/// Drains one pipe on its own thread, keeping the tail. Reading concurrently with the wait matters:
/// a tool that fills the 64 KiB pipe buffer would otherwise block forever and look like a hang.
struct Capture {
    tail: Arc<Mutex<Tail>>,
    done: mpsc::Receiver<()>,
}

#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        // Trim only when well over the limit, so the copy happens rarely.
        if self.bytes.len() > 2 * KEEP_BYTES {
            let cut = self.bytes.len() - KEEP_BYTES;
            self.bytes.drain(..cut);
            self.truncated = true;
        }
    }

    fn text(&self) -> String {
        let start = self.bytes.len().saturating_sub(KEEP_BYTES);
        let text = String::from_utf8_lossy(&self.bytes[start..]);
        if self.truncated || start > 0 {
            format!("…{text}")
        } else {
            text.into_owned()
        }
    }
}

impl Capture {
    fn start<R: Read + Send + 'static>(pipe: Option<R>, thread_name: &str) -> Capture {
        let tail = Arc::new(Mutex::new(Tail::default()));
        let (tx, done) = mpsc::channel();
        if let Some(mut pipe) = pipe {
            let shared = Arc::clone(&tail);
            let spawned = thread::Builder::new().name(thread_name.to_string()).spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match pipe.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => shared.lock().unwrap_or_else(|p| p.into_inner()).push(&buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                }
                let _ = tx.send(());
            });
            // Without a thread the pipe is dropped (closed); the tool then gets SIGPIPE if it writes,
            // which fails the capture visibly rather than hanging it.
            if spawned.is_err() {
                tracing::warn!("cannot start a thread to read a tool's output");
            }
        }
        Capture { tail, done }
    }

    /// Whether the pipe reached end-of-file within `grace`. Once the reader has finished (or never
    /// started) the sender is gone and this returns at once.
    fn wait_closed(&self, grace: Duration) -> bool {
        !matches!(self.done.recv_timeout(grace), Err(mpsc::RecvTimeoutError::Timeout))
    }

    /// What was read, after waiting up to `grace` for end-of-file. A reader still blocked after that
    /// (a descendant outside our group holds the pipe) is left to finish on its own.
    fn finish(&self, grace: Duration) -> String {
        let _ = self.wait_closed(grace);
        self.tail.lock().unwrap_or_else(|p| p.into_inner()).text()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system_env() -> ToolEnv {
        ToolEnv::with_path(FALLBACK_PATH)
    }

    fn bash(script: &str) -> (PathBuf, Vec<OsString>) {
        let bash = system_env().find("bash").expect("bash on PATH");
        (bash, vec!["-c".into(), script.into()])
    }

    fn leftovers(marker: &str) -> bool {
        // Killed orphans are reaped by init asynchronously; a zombie has no command line, so
        // `pgrep -f` stops matching as soon as the process is dead.
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let found = Command::new("pgrep")
                .args(["-f", marker])
                .output()
                .map(|o| o.status.success());
            match found {
                Ok(false) => return false,
                Ok(true) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                Ok(true) => return true,
                Err(e) => panic!("pgrep: {e}"),
            }
        }
    }

    #[test]
    fn captures_output_and_status() {
        let (prog, args) = bash("echo out; echo err >&2; exit 3");
        let done = run(&prog, &args, &system_env(), Duration::from_secs(10)).unwrap();
        assert_eq!(done.status.code(), Some(3));
        assert_eq!(done.stdout.trim(), "out");
        assert_eq!(done.stderr.trim(), "err");
        assert_eq!(done.last_line(), "err");
        assert_eq!(done.describe_status(), "exit status 3");
    }

    #[test]
    fn passes_path_locale_and_variables() {
        let (prog, args) = bash("echo \"$PATH|$LC_ALL|$FOO\"");
        let env = ToolEnv::with_path(format!("/nonexistent:{FALLBACK_PATH}")).var("FOO", "bar");
        let done = run(&prog, &args, &env, Duration::from_secs(10)).unwrap();
        assert_eq!(done.stdout.trim(), format!("/nonexistent:{FALLBACK_PATH}|C|bar"));
    }

    /// Runs the bash `script` made for a marker unique to this test (for `exec -a`), then asserts
    /// that `run` came back within 10 s and that no process so marked is left. Returns what `run`
    /// returned.
    fn run_marked(name: &str, script: impl Fn(&str) -> String, limit: Duration) -> Result<Finished, RunError> {
        let marker = format!("proc-test-{name}-{}", std::process::id());
        let (prog, args) = bash(&script(&marker));
        let started = Instant::now();
        let result = run(&prog, &args, &system_env(), limit);
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(!leftovers(&marker), "a process marked {marker} survived");
        result
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let script = |m: &str| format!("(exec -a {m}-bg sleep 30) & (exec -a {m}-fg sleep 30); echo never");
        let err = run_marked("hang", script, Duration::from_millis(300)).unwrap_err();
        assert_eq!(err.kind, RunErrorKind::Timeout, "{err}");
    }

    #[test]
    fn a_stray_left_after_exit_is_killed_and_does_not_block() {
        let script = |m: &str| format!("(exec -a {m} sleep 30) & echo done");
        let done = run_marked("stray", script, Duration::from_secs(20)).unwrap();
        assert!(done.status.success());
        assert_eq!(done.stdout.trim(), "done");
    }

    #[test]
    fn keeps_only_the_tail_of_huge_output() {
        // 1 MiB of 'x' then a final line: the pipe never blocks and the error line is kept.
        let (prog, args) = bash("head -c 1048576 /dev/zero | tr '\\0' x; echo; echo the-end");
        let done = run(&prog, &args, &system_env(), Duration::from_secs(20)).unwrap();
        assert!(done.stdout.len() <= KEEP_BYTES + 8, "{}", done.stdout.len());
        assert!(done.stdout.starts_with('…'));
        assert_eq!(done.last_line(), "the-end");
    }

    #[test]
    fn missing_program_is_not_found() {
        let err = run::<&str>(
            Path::new("/nonexistent/tool"),
            &[],
            &system_env(),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert_eq!(err.kind, RunErrorKind::NotFound);
    }

    #[test]
    fn find_skips_relative_entries_and_non_executables() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("tool");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        let env = ToolEnv::with_path(std::env::join_paths([Path::new("."), dir.path()]).unwrap());
        assert_eq!(env.find("tool"), None, "not executable yet");
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(env.find("tool"), Some(plain));
        assert_eq!(env.find("other"), None);
    }

    #[test]
    fn last_line_is_trimmed_and_bounded() {
        assert_eq!(last_line("a\n  b  \n\n"), Some("b".to_string()));
        assert_eq!(last_line("\n \n"), None);
        assert_eq!(last_line(&"é".repeat(400)).unwrap().chars().count(), 301);
    }
}

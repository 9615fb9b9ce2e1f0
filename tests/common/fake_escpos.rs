//! A network ESC/POS printer on an ephemeral port for tests that run the real daemon: it answers no
//! status question (like many cheap printers), counts the print jobs it receives (connections
//! carrying `GS v 0` raster), can hold the first job mid-transfer, and can go away entirely.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// `GS v 0`: the raster command every page is sent with.
const RASTER: [u8; 3] = [0x1d, 0x76, 0x30];

pub struct FakeEscpos {
    pub addr: String,
    jobs: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    held: Mutex<mpsc::Receiver<()>>,
    release: mpsc::Sender<()>,
}

impl FakeEscpos {
    /// `hold_first`: the first job is read only up to its first raster band and then kept open,
    /// unread, until `release()` (a job the daemon is in the middle of printing).
    pub fn start(hold_first: bool) -> FakeEscpos {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let jobs = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (held_tx, held_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let (j, s) = (jobs.clone(), stop.clone());
        // Status questions arrive on connections of their own: the hold is for the first print.
        let hold = Arc::new(AtomicBool::new(hold_first));
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (j, held_tx, release_rx) = (j.clone(), held_tx.clone(), release_rx.clone());
                        let hold = hold.clone();
                        std::thread::spawn(move || serve(stream, &hold, &j, &held_tx, &release_rx));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            // Dropping the listener: connections are refused from now on.
        });
        FakeEscpos {
            addr,
            jobs,
            stop,
            held: Mutex::new(held_rx),
            release: release_tx,
        }
    }

    /// Print jobs received so far (a held one included).
    pub fn jobs(&self) -> usize {
        self.jobs.load(Ordering::SeqCst)
    }

    /// Waits until the held job has started arriving; false if it never does.
    pub fn wait_held(&self) -> bool {
        self.held.lock().unwrap().recv_timeout(Duration::from_secs(30)).is_ok()
    }

    /// Closes the held job's connection with its data unread: the daemon sees a reset mid-job.
    pub fn release(&self) {
        let _ = self.release.send(());
    }

    /// The printer goes away: its listener closes and new connections are refused.
    pub fn unplug(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// The daemon's `[printer]` lines for this printer.
    pub fn printer_toml(&self) -> String {
        format!("backend = \"escpos\"\ndevice = \"tcp://{}\"\n", self.addr)
    }
}

impl Drop for FakeEscpos {
    fn drop(&mut self) {
        self.unplug();
    }
}

fn serve(
    mut stream: TcpStream,
    hold: &AtomicBool,
    jobs: &AtomicUsize,
    held: &mpsc::Sender<()>,
    release: &Mutex<mpsc::Receiver<()>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    let mut counted = false;
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&chunk[..n]),
        }
        if !counted && seen.windows(RASTER.len()).any(|w| w == RASTER) {
            counted = true;
            jobs.fetch_add(1, Ordering::SeqCst);
            if hold.swap(false, Ordering::SeqCst) {
                let _ = held.send(());
                let _ = release.lock().map(|r| r.recv_timeout(Duration::from_secs(60)));
                // Dropped with unread bytes: the kernel answers with a reset.
                return;
            }
        }
    }
}

//! `photoboothd run`: opens the store, binds both listeners, starts the print loop, and shuts all
//! of it down in order on SIGTERM or Ctrl-C (listeners stop taking requests, in-flight requests
//! finish, the print loop finishes the job it is printing).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::booth::health::{BlockReason, Health};
use crate::booth::live::{self, LiveHub, PausingCamera};
use crate::booth::print_loop::PrintLoop;
use crate::booth::session::SessionManager;
use crate::booth::{Booth, Shared};
use crate::clock;
use crate::config::Config;
use crate::http::{serve, Kiosk, Webhook};
use crate::hw::camera::{self, Camera};
use crate::hw::gpio::{self, Gpio};
use crate::hw::printer;
use crate::metrics::Metrics;
use crate::payme::auth::{self, KeyRing};
use crate::payme::Merchant;
use crate::store::{media, Store, StoreError};

/// Written into the data directory once both listeners are bound, removed on a clean stop.
/// The CLI reads it to find the running daemon's real addresses (the config may say port 0).
pub const RUNTIME_FILE: &str = "photoboothd.run.json";

#[derive(Debug, Serialize, Deserialize)]
pub struct RuntimeInfo {
    pub pid: u32,
    pub kiosk: SocketAddr,
    pub webhook: SocketAddr,
    /// The metrics-only listener (`[http] metrics_listen`), when configured.
    #[serde(default)]
    pub metrics: Option<SocketAddr>,
    pub started_at: i64,
}

impl RuntimeInfo {
    pub fn read(data_dir: &Path) -> Option<RuntimeInfo> {
        let text = std::fs::read_to_string(data_dir.join(RUNTIME_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

message_error!(DaemonError);

impl From<StoreError> for DaemonError {
    fn from(e: StoreError) -> Self {
        DaemonError(e.to_string())
    }
}

pub async fn run(mut config: Config) -> Result<(), DaemonError> {
    let started = Instant::now();
    // The same checks as `check-config`, with the same messages, before anything is opened.
    crate::preflight::check(&config).map_err(DaemonError)?;
    // The printer first: its driver decides the page every layout is composed at, and a media the
    // driver does not offer stops the start here, naming the ones it does.
    let printer: Arc<dyn printer::Printer> = printer::from_config(&config).map_err(DaemonError)?.into();
    config.printer.page = printer.page_size();
    if let Some(page) = config.printer.page {
        tracing::info!(%page, "printer: pages are composed at the driver's page size");
    }
    let config = Arc::new(config);
    let data_dir = config.data_dir();
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| DaemonError(format!("cannot create the data directory {}: {e}", data_dir.display())))?;
    let store = Arc::new(open_store(&data_dir).await?);

    let configured = auth::configured_key(&config, &data_dir).map_err(|e| DaemonError(e.to_string()))?;
    let key_store = store.clone();
    let configured_key = configured.key.clone();
    let (effective, rotated) = tokio::task::spawn_blocking(move || {
        key_store.write(|tx| auth::forget_legacy_rotation(tx))?;
        key_store.read(|c| auth::effective_key(c, &configured_key))
    })
    .await
    .map_err(|e| DaemonError(e.to_string()))??;
    if rotated {
        tracing::info!(origin = %configured.origin, replaced_key = %auth::fingerprint(&configured.key),
            key = %auth::fingerprint(&effective),
            "payme: using the key Payme set with ChangePassword, which replaced the configured key");
    } else {
        tracing::info!(origin = %configured.origin, key = %auth::fingerprint(&effective), "payme: key loaded");
    }
    warn_about_config(&config);

    let (wake_tx, wake_rx) = mpsc::channel(64);
    let service_wake = wake_tx.clone();
    let event_wake = wake_tx.clone();
    let menu_wake = wake_tx.clone();
    let camera: Arc<dyn Camera> = camera::from_config(&config).into();
    // One live view producer for every viewer; stills pause it when the camera cannot do both.
    let live = LiveHub::new(camera.clone(), config.camera.live_idle);
    let camera: Arc<dyn Camera> = Arc::new(PausingCamera {
        inner: camera,
        hub: live.clone(),
    });
    let (button_tx, button_rx) = mpsc::unbounded_channel();
    let gpio: Arc<dyn Gpio> = gpio::from_config(&config, button_tx)
        .map_err(|e| DaemonError(e.to_string()))?
        .into();
    let health = Arc::new(Health::new(printer.backend(), camera.backend(), gpio.backend()));
    health.watch_store(store.clone());
    health.watch_disk(data_dir.clone(), config.storage.min_free_mb);
    if config.requires_synced_clock() {
        health.require_synced_clock(config.booth.clock_synced_file.clone());
        if !health.clock_synced() {
            tracing::warn!(file = %config.booth.clock_synced_file.display(), "the system clock is not synchronised yet: no orders until it is");
        }
    }
    // "No payment without a printer": Check and a new Create answer -31008 while a blocker stops
    // delivery. A store that cannot write is left out: Payme must get -32400 and retry. Low disk
    // space and an unsynchronised clock refuse new sessions only; paid prints still go out.
    let gate_health = health.clone();
    let gate: crate::payme::DeliveryGate = Arc::new(move |kind| {
        gate_health
            .blockers()
            .into_iter()
            .find(|b| b.reason.stops(kind) && b.reason.stops_printing() && b.reason != BlockReason::StoreFailed)
            .map(|b| b.message)
    });
    let merchant = Arc::new(
        Merchant::new(
            store.clone(),
            KeyRing::new(configured.key, &effective),
            config.payme.account_field.clone(),
            config.payme.fiscal.clone(),
            wake_tx,
        )
        .with_simulations(crate::payme::checkout::is_sandbox(&config.payme.checkout_base))
        .with_delivery_gate(gate)
        .with_digital_links(digital_links(&config)),
    );
    let capacity = config.printer.capacity;
    let media_store = store.clone();
    let media =
        tokio::task::spawn_blocking(move || media_store.write(|tx| media::ensure(tx, capacity, clock::now_ms())))
            .await
            .map_err(|e| DaemonError(e.to_string()))??;
    if let Some(m) = media {
        tracing::info!(media_left = m.remaining, capacity = m.capacity, "media counter");
    }
    health.set_media(media);
    let booth = Arc::new(Booth::new(store.clone(), config.clone(), health.clone(), gpio.clone()));
    booth.set_print_wake(event_wake);
    let (event_store, event_config) = (store.clone(), config.clone());
    let event = tokio::task::spawn_blocking(move || {
        crate::booth::event::sync_with_config(&event_store, &event_config, clock::now_ms())
    })
    .await
    .map_err(|e| DaemonError(e.to_string()))??;
    if let Some(e) = &event {
        tracing::info!(event_id = e.id, source = %e.source, max_prints = e.max_prints, prints_left = e.prints_left,
            "event mode: prints are free, no Payme orders are made");
    }
    health.set_event(event);
    let service_menu = crate::booth::service_menu::ServiceMenu::from_config(
        &config,
        booth.clone(),
        store.clone(),
        printer.clone(),
        menu_wake,
    )
    .map(Arc::new);
    if service_menu.is_some() {
        tracing::info!("service menu enabled ([service] PIN set)");
    }

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // Start-up work on the runtime thread is fine: nothing is being served yet.
    let shared = Shared {
        store: store.clone(),
        config: config.clone(),
        booth: booth.clone(),
        health: health.clone(),
        gpio: gpio.clone(),
        camera,
        data_dir: data_dir.clone(),
    };
    let (sessions, session_task) = SessionManager::start(shared, shutdown_rx.clone())?;

    tokio::spawn(live::follow_sessions(
        live.clone(),
        sessions.subscribe(),
        shutdown_rx.clone(),
    ));
    let live_closer = live.clone();
    let mut live_shutdown = shutdown_rx.clone();
    tokio::spawn(async move {
        // Viewers' streams end at shutdown, or the listener's drain would wait for them.
        let _ = live_shutdown.wait_for(|stop| *stop).await;
        let _ = tokio::task::spawn_blocking(move || live_closer.close()).await;
    });

    let webhook_listener = bind(config.http.webhook_listen, "http.webhook_listen").await?;
    let kiosk_listener = bind(config.http.kiosk_listen, "http.kiosk_listen").await?;
    let metrics_listener = match config.http.metrics_listen {
        Some(addr) => Some(bind(addr, "http.metrics_listen").await?),
        None => None,
    };
    let info = RuntimeInfo {
        pid: std::process::id(),
        kiosk: local_addr(&kiosk_listener)?,
        webhook: local_addr(&webhook_listener)?,
        metrics: metrics_listener.as_ref().map(local_addr).transpose()?,
        started_at: clock::now_ms(),
    };
    if crate::digital::config::off_reason(&config).is_none() {
        // Without a public address (sandbox only) the link is the webhook listener's own.
        let base = config
            .digital
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", info.webhook));
        tracing::info!(base = %base, link_hours = config.digital.link_hours, "digital copies on");
        booth.set_download_base(&base);
    }
    if let Err(e) = write_runtime_file(&data_dir, &info) {
        // A full disk must not stop the start: the booth runs out of service (the free-space and
        // store blockers) and comes back when space does, instead of systemd starting it again
        // every 5 s while the kiosk shows the browser's error page. Without the file the CLI finds
        // no daemon rather than a killed run's ports.
        tracing::error!(error = %e, "the CLI cannot find this daemon until it restarts with disk space free");
        let _ = std::fs::remove_file(data_dir.join(RUNTIME_FILE));
        let _ = std::fs::remove_file(data_dir.join(format!(".{RUNTIME_FILE}.tmp")));
    }
    tracing::info!(
        kiosk = %info.kiosk,
        webhook = %info.webhook,
        metrics = ?info.metrics,
        data_dir = %data_dir.display(),
        printer = printer.backend(),
        camera = health.camera_backend,
        gpio = gpio.backend(),
        ready_ms = started.elapsed().as_millis() as u64,
        "photoboothd ready"
    );

    // Ready only now: the store is open and both listeners are bound.
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "cannot tell systemd we are ready");
    }
    if let Some(interval) = sd_notify::watchdog_enabled() {
        tokio::spawn(watchdog(
            interval / 2,
            store.clone(),
            health.clone(),
            shutdown_rx.clone(),
        ));
    }
    tokio::spawn(watch_clock(config.booth.clock_synced_file.clone(), shutdown_rx.clone()));
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        tracing::info!("shutting down");
        let _ = shutdown_tx.send(true);
    });

    tokio::spawn(crate::booth::service::handle_buttons(
        button_rx,
        sessions.clone(),
        store.clone(),
        printer.clone(),
        service_wake,
    ));
    let print_loop = tokio::spawn(
        PrintLoop {
            store: store.clone(),
            printer,
            health: health.clone(),
            booth_name: config.booth.name.clone(),
            warn_below: config.printer.warn_below,
            data_dir: data_dir.clone(),
            print_qr: crate::digital::PrintQr::from_config(&config, booth.download_base()),
        }
        .run(wake_rx, shutdown_rx.clone()),
    );
    let janitor = tokio::spawn(
        crate::booth::janitor::Janitor {
            store: store.clone(),
            data_dir: data_dir.clone(),
            storage: config.storage.clone(),
        }
        .run(booth.clone(), shutdown_rx.clone()),
    );
    let metrics = Arc::new(Metrics::new(store.clone(), health.clone(), config.clone()));
    // Scrapes are rare and tiny: a handful of connections is plenty.
    let metrics_router = crate::http::metrics::router(metrics.clone());
    let metrics_shutdown = shutdown_rx.clone();
    let metrics_only = async move {
        match metrics_listener {
            Some(listener) => serve(listener, metrics_router, 8, metrics_shutdown).await,
            None => Ok(()),
        }
    };
    let webhook_state = Webhook {
        merchant,
        metrics: metrics.clone(),
    };
    tokio::spawn(crate::digital::sweep(
        store.clone(),
        data_dir.clone(),
        shutdown_rx.clone(),
    ));
    let downloads = crate::http::Downloads::new(
        store.clone(),
        data_dir.clone(),
        config.booth.name.clone(),
        config.booth.language,
    );
    // The webhook faces the internet (through the tunnel); the kiosk serves one browser.
    let webhook = serve(
        webhook_listener,
        crate::http::webhook_router(webhook_state).merge(crate::http::download_router(downloads)),
        768,
        shutdown_rx.clone(),
    );
    let kiosk_state = Kiosk {
        booth,
        sessions,
        data_dir: data_dir.clone(),
        store: store.clone(),
        metrics,
        service: service_menu,
        events: Kiosk::events_cap(),
        live,
    };
    let kiosk_connections = kiosk_state.max_connections();
    let kiosk = serve(
        kiosk_listener,
        crate::http::kiosk_router(kiosk_state),
        kiosk_connections,
        shutdown_rx.clone(),
    );
    let (w, k, m) = tokio::join!(webhook, kiosk, metrics_only);
    let _ = print_loop.await;
    let _ = janitor.await;
    let _ = session_task.await;
    let _ = std::fs::remove_file(data_dir.join(RUNTIME_FILE));
    w.and(k)
        .and(m)
        .map_err(|e| DaemonError(format!("listener failed: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}

/// Pings systemd's watchdog while the booth is healthy. A store that does not answer or a print
/// loop that stopped going round ends the pings, and systemd restarts the service.
async fn watchdog(every: Duration, store: Arc<Store>, health: Arc<Health>, mut shutdown: watch::Receiver<bool>) {
    tracing::info!(every_ms = every.as_millis() as u64, "systemd watchdog enabled");
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let probe = store.clone();
        let store_ok = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::task::spawn_blocking(move || probe.read(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))),
        )
        .await;
        let problem = match store_ok {
            Ok(Ok(Ok(_))) => health.print_loop_stuck(clock::mono_ms()),
            Ok(Ok(Err(e))) => Some(format!("the store fails: {e}")),
            Ok(Err(e)) => Some(format!("the store probe failed: {e}")),
            Err(_) => Some("the store did not answer in 5 s".into()),
        };
        match problem {
            None => {
                if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]) {
                    tracing::warn!(error = %e, "cannot ping the systemd watchdog");
                }
            }
            Some(why) => tracing::error!("not pinging the systemd watchdog: {why}"),
        }
    }
}

/// Follows the wall clock: adopts it when it first becomes synchronised (`clock::resync`), and
/// warns about any other jump, which the booth's steady time ignores (see `clock`).
async fn watch_clock(synced_file: PathBuf, mut shutdown: watch::Receiver<bool>) {
    const EVERY: Duration = Duration::from_secs(5);
    /// Smaller differences are NTP's own slewing and scheduling noise.
    const JUMP_MS: i64 = 60_000;
    let mut synced = synced_file.exists();
    let mut warned_drift = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.changed() => return,
        }
        let now_synced = synced_file.exists();
        if now_synced && !synced {
            let moved = clock::resync();
            warned_drift = 0;
            tracing::info!(
                moved_ms = moved,
                "the system clock is synchronised; the booth's time follows it"
            );
        }
        synced = now_synced;
        let drift = clock::drift_ms();
        if (drift - warned_drift).abs() > JUMP_MS {
            warned_drift = drift;
            tracing::warn!(
                drift_s = drift / 1000,
                "the system clock jumped; the booth keeps its steady time (order expiry, timeouts) until it restarts"
            );
        }
    }
}

async fn open_store(data_dir: &Path) -> Result<Store, DaemonError> {
    let dir = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || Store::open_in(&dir))
        .await
        .map_err(|e| DaemonError(e.to_string()))?
        .map_err(|e| DaemonError(format!("cannot open the database in {}: {e}", data_dir.display())))
}

/// What the Payme methods make at payment; while digital copies are off (the start-up log says
/// why) print orders get no link, and a digital order paid anyway still gets its own.
fn digital_links(config: &Config) -> crate::digital::Links {
    if let Some(why) = crate::digital::config::off_reason(config) {
        tracing::warn!("digital copies are off: {why}");
    }
    crate::digital::config::links(config)
}

/// Sets glibc's allocator for a long-running daemon that handles 12 MP photos: at most two arenas
/// (each thread that ever allocated could otherwise keep its own: 40 -> 20 MiB in the flow bench),
/// and buffers of 256 KiB and more always taken from and given back to the kernel. glibc otherwise
/// raises that threshold to the largest buffer freed so far, after which the next photo's decode
/// buffers come from the heap, whose freed pieces fragment and stay resident from one session to
/// the next (BENCHMARKS.md, issue 17: peak RSS of a 12 MP session). Call before threads start.
/// `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_` in the environment win, as glibc documents.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const ARENAS: libc::c_int = 2;
        const MMAP_THRESHOLD: libc::c_int = 256 * 1024;
        // SAFETY: mallopt only changes allocator parameters; it is called before other threads run.
        unsafe {
            if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
                libc::mallopt(libc::M_ARENA_MAX, ARENAS);
            }
            if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
        }
    }
}

fn warn_about_config(config: &Config) {
    if config.is_sandbox() {
        tracing::warn!(
            checkout_base = %config.payme.checkout_base,
            "SANDBOX: checkout links go to Payme's test checkout, no real money is taken; set payme.checkout_base = \"https://checkout.paycom.uz\" for production"
        );
    }
    if config.dev.enabled {
        tracing::warn!("development switches are on ([dev] enabled): POST /api/dev/button works");
    }
    if config.payme.merchant_id.is_empty() {
        tracing::warn!("payme.merchant_id is not set: QR codes will not open a real Payme checkout");
    }
    if config.payme.fiscal.is_none() {
        tracing::warn!("[payme.fiscal] is not set: CheckPerformTransaction sends no fiscal receipt detail");
    }
}

async fn bind(addr: SocketAddr, key: &str) -> Result<TcpListener, DaemonError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| DaemonError(format!("cannot listen on {addr} ({key}): {e}")))
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, DaemonError> {
    listener.local_addr().map_err(|e| DaemonError(e.to_string()))
}

fn write_runtime_file(data_dir: &Path, info: &RuntimeInfo) -> Result<(), DaemonError> {
    let path: PathBuf = data_dir.join(RUNTIME_FILE);
    let tmp = data_dir.join(format!(".{RUNTIME_FILE}.tmp"));
    let text = serde_json::to_string(info).map_err(|e| DaemonError(e.to_string()))?;
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| DaemonError(format!("cannot write {}: {e}", path.display())))
}

async fn serve(
    listener: TcpListener,
    router: axum::Router,
    max_connections: usize,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let limits = serve::Limits {
        max_connections,
        header_timeout: Duration::from_secs(10),
        max_header_bytes: 32 * 1024,
    };
    serve::serve(listener, router, limits, shutdown).await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

//! The kiosk screen end to end: the real daemon (sim camera, sim GPIO, file printer) and the real
//! page in headless Chromium, driven through chromedriver (WebDriver) the way a customer's finger
//! drives it. Every screen passed is saved as a PNG under `target/ui-screens/`
//! (`<scenario>-<screen>-<W>x<H>.png`), at 1024×600 from the browser that is tapped and at 1280×800
//! from a second browser that only watches the same booth.
//!
//! Needs `chromium` and `chromedriver` (Debian packages `chromium`, `chromium-driver`; see
//! `.ci/chromium-setup.sh`), found at /usr/bin or through `CHROMIUM` / `CHROMEDRIVER`. Without them
//! the tests are skipped, except under `CI`, where they fail.
//!
//! The tests take turns (one lock): each runs two browsers, and a loaded machine makes the short
//! countdowns flaky to photograph.

mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, TestConfig};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const SMALL: (u32, u32) = (1024, 600);
const LARGE: (u32, u32) = (1280, 800);

/// One browser test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------------
// Finding and running the browser.

struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

/// The browser and its driver, or `None` (test skipped) when they are not installed. Under `CI`
/// a missing browser is a failure: the CI script installs it.
fn browser_tools() -> Option<Tools> {
    let from_env = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| default.into())
    };
    let tools = Tools {
        chromium: from_env("CHROMIUM", "/usr/bin/chromium"),
        chromedriver: from_env("CHROMEDRIVER", "/usr/bin/chromedriver"),
    };
    let missing: Vec<String> = [&tools.chromium, &tools.chromedriver]
        .into_iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return Some(tools);
    }
    let message = format!(
        "kiosk e2e: {} not found; install with `.ci/chromium-setup.sh` (Debian packages chromium and \
         chromium-driver) or point CHROMIUM / CHROMEDRIVER at them",
        missing.join(" and ")
    );
    common::skip(&message);
    None
}

/// A browser test's start: the tools and its turn at them, held until the test (or its
/// [`Scenario`]) ends.
struct Turn {
    tools: Tools,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

/// `None`: skipped, see [`browser_tools`].
async fn browser_turn() -> Option<Turn> {
    let tools = browser_tools()?;
    Some(Turn {
        tools,
        _serial: SERIAL.lock().await,
    })
}

extern "C" {
    #[link_name = "kill"]
    fn sys_kill(pid: i32, sig: i32) -> i32;
}
const SIGKILL: i32 = 9;

/// A chromedriver on its own free port with one Chromium session. Chromedriver runs in its own
/// process group, which the Chromium it starts joins; dropping the browser kills that group.
struct Browser {
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
    size: (u32, u32),
}

impl Browser {
    async fn launch(tools: &Tools, size: (u32, u32)) -> Browser {
        let mut last_error = String::new();
        for _ in 0..3 {
            match Browser::try_launch(tools, size).await {
                Ok(b) => return b,
                Err(e) => last_error = e,
            }
        }
        panic!("cannot start chromedriver + chromium at {size:?}: {last_error}");
    }

    async fn try_launch(tools: &Tools, size: (u32, u32)) -> Result<Browser, String> {
        use std::os::unix::process::CommandExt;
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let driver = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                profile.path().join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", tools.chromedriver.display()))?;
        let mut browser = Browser {
            client: None,
            driver,
            _profile: profile,
            size,
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = photoboothd::client::request(addr, "GET", "/status", &[], Vec::new()).await {
                if r.json().ok().and_then(|v| v["value"]["ready"].as_bool()) == Some(true) {
                    break;
                }
            }
            if let Ok(Some(status)) = browser.driver.try_wait() {
                return Err(format!("chromedriver exited with {status} (port {port} taken?)"));
            }
            if Instant::now() > deadline {
                return Err("chromedriver did not answer on /status within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let user_data = browser._profile.path().join("chromium");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": tools.chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--hide-scrollbars",
                    format!("--window-size={},{}", size.0, size.1),
                    format!("--user-data-dir={}", user_data.display()),
                ],
            },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://{addr}"))
            .await
            .map_err(|e| format!("no WebDriver session: {e}"))?;
        browser.client = Some(client);
        browser.fit_viewport(size).await?;
        Ok(browser)
    }

    /// Makes the page itself exactly `size` (--window-size sizes the window, not the viewport).
    async fn fit_viewport(&mut self, size: (u32, u32)) -> Result<(), String> {
        self.size = size;
        let (w, h) = self.viewport().await;
        if (w, h) != size {
            let c = self.c();
            let (ow, oh) = c.get_window_size().await.map_err(|e| e.to_string())?;
            let target = (
                ow as i64 + i64::from(size.0) - w as i64,
                oh as i64 + i64::from(size.1) - h as i64,
            );
            c.set_window_size(target.0 as u32, target.1 as u32)
                .await
                .map_err(|e| e.to_string())?;
            let got = self.viewport().await;
            if got != size {
                return Err(format!("viewport is {got:?}, wanted {size:?}"));
            }
        }
        Ok(())
    }

    fn c(&self) -> &Client {
        self.client.as_ref().expect("a WebDriver session")
    }

    fn size_label(&self) -> String {
        format!("{}x{}", self.size.0, self.size.1)
    }

    async fn js(&self, script: &str) -> Value {
        self.c()
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed ({e}): {script}"))
    }

    async fn viewport(&self) -> (u32, u32) {
        let v = self.js("return [window.innerWidth, window.innerHeight]").await;
        (v[0].as_u64().unwrap_or(0) as u32, v[1].as_u64().unwrap_or(0) as u32)
    }

    async fn open(&self, url: &str) {
        self.c().goto(url).await.expect("the kiosk page loads");
    }

    /// The visible screen, with the error code for the error screen (`error-print_failed`).
    async fn screen(&self) -> String {
        let v = self
            .js(
                "var b = window.booth; if (!b || !b.screen) return 'none';
                 if (b.screen !== 'error') return b.screen;
                 return 'error-' + document.querySelector('#screens > [data-screen=error]').getAttribute('data-error');",
            )
            .await;
        v.as_str().unwrap_or("none").to_string()
    }

    /// Every screen the page has shown, in order.
    async fn screen_log(&self) -> Vec<String> {
        let v = self.js("return window.booth ? window.booth.screens : []").await;
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default()
    }

    async fn el(&self, css: &str) -> fantoccini::elements::Element {
        self.c()
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// A tap: WebDriver scrolls to the element and refuses one that is hidden or covered.
    async fn tap(&self, css: &str) {
        self.el(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot tap {css}: {e}"));
    }

    /// The element's visible text, with the thin and no-break spaces of money made plain.
    async fn text(&self, css: &str) -> String {
        // innerText as laid out; not WebDriver's visible text, which is empty while a screen fades in.
        let script = format!("var e = document.querySelector({css:?}); return e ? e.innerText : null");
        let t = self.js(&script).await;
        let t = t.as_str().unwrap_or_else(|| panic!("no element {css}"));
        plain(t).trim().to_string()
    }

    /// Rendered (not inside anything `hidden` or `display: none`), whatever its opacity.
    async fn displayed(&self, css: &str) -> bool {
        let script = format!(
            "var e = document.querySelector({css:?});
             return !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden'"
        );
        self.js(&script).await.as_bool() == Some(true)
    }

    async fn image_loaded(&self, css: &str) -> bool {
        let script = format!("var i = document.querySelector('{css}'); return !!i && i.complete && i.naturalWidth > 0");
        self.js(&script).await.as_bool() == Some(true)
    }

    /// Waits until the screen's entrance animations are over, so a screenshot shows it settled. On
    /// a short screen (`brief`) only the entrance and the flash count, not the countdown's own beat.
    async fn settle(&self, brief: bool) {
        let deadline = Instant::now() + Duration::from_millis(if brief { 600 } else { 1500 });
        let script = format!(
            "return document.getAnimations().filter(function (a) {{
               return a.playState === 'running' && isFinite(a.effect.getComputedTiming().endTime)
                 && (!{brief} || a.animationName === 'appear' || a.animationName === 'flash');
             }}).length"
        );
        while Instant::now() < deadline {
            let running = self.js(&script).await;
            if running.as_u64() == Some(0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }

    /// What a customer could not use: anything outside the screen, text cut off in its box, a
    /// visible button smaller than a 64 px finger target. Moving decorations are left out.
    async fn layout_problems(&self) -> Vec<String> {
        let v = self
            .js(
                "var bad = [], vw = window.innerWidth, vh = window.innerHeight;
                 var skip = '.countdown-number, .paper, .paper-out, .flash, .strip, .strip *, .spinner, .progress > div';
                 var all = document.querySelectorAll('#topbar *, #screens > [data-screen]:not([hidden]) *, .toast');
                 function name(el) {
                   return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
                     (el.className && el.className.baseVal === undefined ? '.' + el.className.split(' ').join('.') : '') +
                     ' [' + (el.textContent || '').trim().slice(0, 40) + ']';
                 }
                 for (var i = 0; i < all.length; i++) {
                   var el = all[i];
                   if (el.closest('[hidden]') || el.matches(skip)) continue;
                   var r = el.getBoundingClientRect();
                   if (r.width === 0 && r.height === 0) continue;
                   if (r.left < -1 || r.top < -1 || r.right > vw + 1 || r.bottom > vh + 1) {
                     bad.push('outside the screen: ' + name(el) + ' at ' + [r.left, r.top, r.right, r.bottom].map(Math.round));
                   }
                   var css = getComputedStyle(el);
                   var texty = /\\S/.test(el.textContent || '');
                   if (texty && css.overflow === 'hidden' && el.scrollWidth > el.clientWidth + 1) {
                     bad.push('text cut off: ' + name(el));
                   }
                   if (el.tagName === 'BUTTON' && (r.width < 64 || r.height < 64)) {
                     bad.push('button under 64 px: ' + name(el) + ' ' + Math.round(r.width) + 'x' + Math.round(r.height));
                   }
                 }
                 if (document.documentElement.scrollHeight > vh || document.documentElement.scrollWidth > vw) {
                   bad.push('the page scrolls');
                 }
                 return bad;",
            )
            .await;
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default()
    }

    /// Waits until the page has left `screen` (after a tap that changes it).
    async fn wait_left(&self, screen: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.screen().await == screen {
            assert!(Instant::now() < deadline, "the page stayed on {screen}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), c.close()).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group is chromedriver's own (process_group(0) above): it and the Chromium it started.
        let pid = self.driver.id() as i32;
        // SAFETY: kill(2) on a process group this test created; no memory is involved.
        unsafe { sys_kill(-pid, SIGKILL) };
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// 40000 → "40 000": thousands grouped the way the page shows sums (after `plain`).
fn grouped(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn plain(s: &str) -> String {
    s.replace(['\u{202f}', '\u{2009}', '\u{a0}'], " ")
}

fn screens_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp; the screenshots live next to it.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("ui-screens");
    std::fs::create_dir_all(&dir).expect("create target/ui-screens");
    dir
}

// ---------------------------------------------------------------------------------------------
// The booth under test.

struct Cfg {
    order_ttl_s: u32,
    done_timeout_s: u32,
    error_timeout_s: u32,
    capacity: u32,
    /// `printer.dir` for the file printer (default: data/prints).
    printer_dir: Option<PathBuf>,
    /// A fixed kiosk port, for a page that must find the daemon again after a restart.
    kiosk_port: u16,
    shots: u32,
    countdown_s: u32,
    review_timeout_s: u32,
    camera_backend: &'static str,
}

impl Default for Cfg {
    fn default() -> Cfg {
        Cfg {
            order_ttl_s: 600,
            done_timeout_s: 6,
            error_timeout_s: 6,
            capacity: 0,
            printer_dir: None,
            kiosk_port: 0,
            shots: 3,
            countdown_s: 1,
            review_timeout_s: 120,
            camera_backend: "sim",
        }
    }
}

/// The whole configuration: sim camera (small frames keep a debug build quick), sim GPIO, the file
/// printer with the 2×6 strip layout, one-second countdowns.
fn booth_config(data_dir: &Path, c: &Cfg) -> String {
    let Cfg {
        order_ttl_s,
        done_timeout_s,
        error_timeout_s,
        capacity,
        printer_dir,
        kiosk_port,
        shots,
        countdown_s,
        review_timeout_s,
        camera_backend,
    } = c;
    let dir = printer_dir
        .as_ref()
        .map(|d| format!("dir = \"{}\"\n", d.display()))
        .unwrap_or_default();
    TestConfig {
        name: "E2E Booth".into(),
        kiosk_listen: format!("127.0.0.1:{kiosk_port}"),
        booth: format!("order_ttl_s = {order_ttl_s}\nlanguage = \"uz\"\n"),
        printer: format!("layout = \"strip-2x6\"\ncapacity = {capacity}\n{dir}"),
        tail: format!(
            r#"
[session]
max_retakes = 2
review_timeout_s = {review_timeout_s}
copies_timeout_s = {review_timeout_s}
done_timeout_s = {done_timeout_s}
error_timeout_s = {error_timeout_s}

[camera]
backend = "{camera_backend}"
shots = {shots}
countdown_s = {countdown_s}
timeout_s = 20
width = 960
height = 720
live_width = 640
live_height = 360

[gpio]
backend = "sim"
"#
        ),
        ..TestConfig::new(data_dir)
    }
    .text()
}

/// The daemon's session and order lines: the flow as a timeline.
fn timeline(log: &str) -> String {
    log.lines()
        .filter(|l| l.contains("session") || l.contains("order_id") || l.contains("printer"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One scenario: a daemon, the browser that is tapped (1024×600) and one that watches (1280×800).
/// On a failure it prints the daemon's timeline and the screenshots taken so far.
struct Scenario {
    name: &'static str,
    d: Daemon,
    tap: Option<Browser>,
    watch: Option<Browser>,
    shots: BTreeSet<String>,
    /// Last, so the turn passes on only when the browsers are gone.
    _turn: Turn,
}

impl Scenario {
    async fn start(name: &'static str, turn: Turn, cfg: Cfg) -> Scenario {
        let d = Daemon::start_with_config(|data| booth_config(data, &cfg)).await;
        Scenario::with_daemon(name, turn, d).await
    }

    /// Where most scenarios begin: this test's turn at the browsers (`None`: skipped), `start`,
    /// then the attract screen.
    async fn at_idle(name: &'static str, cfg: Cfg) -> Option<Scenario> {
        let turn = browser_turn().await?;
        let mut s = Scenario::start(name, turn, cfg).await;
        s.follow_until("idle", Duration::from_secs(10)).await;
        Some(s)
    }

    /// Where the payment scenarios begin: `at_idle`, the three shots, then a one-copy order on the
    /// payment screen (`order`). Returns the scenario and the order's id.
    async fn awaiting_payment(name: &'static str, cfg: Cfg) -> Option<(Scenario, i64)> {
        let mut s = Scenario::at_idle(name, cfg).await?;
        s.capture_to_review().await;
        let order = s.order(1, false).await;
        let order_id = order["order_id"].as_i64().unwrap();
        Some((s, order_id))
    }

    async fn with_daemon(name: &'static str, turn: Turn, d: Daemon) -> Scenario {
        let tools = &turn.tools;
        let (tap, watch) = tokio::join!(Browser::launch(tools, SMALL), Browser::launch(tools, LARGE));
        let url = format!("http://{}/", d.kiosk);
        tokio::join!(tap.open(&url), watch.open(&url));
        Scenario {
            name,
            d,
            tap: Some(tap),
            watch: Some(watch),
            shots: BTreeSet::new(),
            _turn: turn,
        }
    }

    fn b(&self) -> &Browser {
        self.tap.as_ref().unwrap()
    }

    fn browsers(&self) -> [&Browser; 2] {
        [self.tap.as_ref().unwrap(), self.watch.as_ref().unwrap()]
    }

    async fn session(&self) -> Value {
        let (status, v) = self.d.kiosk("GET", "/api/session", "").await;
        assert_eq!(status, 200, "{v}");
        v
    }

    /// Saves a screenshot of `b` if it shows `screen` before and after the capture. Transient
    /// screens (countdown, capture) are taken at once; others once their animations are over.
    async fn try_shoot(&mut self, which: usize, screen: &str, label: &str) -> bool {
        let b = self.browsers()[which];
        let file = format!("{}-{label}-{}.png", self.name, b.size_label());
        if self.shots.contains(&file) {
            return true;
        }
        if b.screen().await != screen {
            return false;
        }
        b.settle(matches!(screen, "countdown" | "capturing")).await;
        let png = b.c().screenshot().await.expect("screenshot");
        if b.screen().await != screen {
            return false;
        }
        std::fs::write(screens_dir().join(&file), png).expect("save screenshot");
        let problems = b.layout_problems().await;
        assert!(problems.is_empty(), "{file}: layout problems:\n{}", problems.join("\n"));
        self.shots.insert(file);
        true
    }

    /// Screenshots of the current screen from both browsers, under `label` (default: the screen).
    async fn shoot(&mut self, label: Option<&str>) {
        self.shoot_from(&[0, 1], label).await;
    }

    /// A screenshot from the tapped browser only: for what only that page knows (a refused tap).
    async fn shoot_tapped(&mut self, label: &str) {
        self.shoot_from(&[0], Some(label)).await;
    }

    async fn shoot_from(&mut self, which: &[usize], label: Option<&str>) {
        let screen = self.b().screen().await;
        let label = label.map(String::from).unwrap_or_else(|| screen.clone());
        for &which in which {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self.try_shoot(which, &screen, &label).await {
                assert!(
                    Instant::now() < deadline,
                    "{}: screen {screen} never steady enough to photograph",
                    self.name
                );
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
    }

    /// Follows the booth until the tapped browser shows `target`, photographing every screen either
    /// browser passes on the way (the short ones when it manages; they come three times a session)
    /// and then `target`.
    async fn follow_until(&mut self, target: &str, timeout: Duration) {
        self.reach(target, timeout).await;
        self.shoot(None).await;
    }

    /// `follow_until` without the final screenshot: for a short screen that must be checked first.
    async fn reach(&mut self, target: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            for which in 0..2 {
                let screen = self.browsers()[which].screen().await;
                if screen != "none" && screen != "loading" && screen != target {
                    self.try_shoot(which, &screen, &screen).await;
                }
            }
            if self.b().screen().await == target {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "{}: the page never showed {target} within {timeout:?}; it shows {}; screens so far: {:?}; \
                     the daemon's view: {}",
                    self.name,
                    self.b().screen().await,
                    self.b().screen_log().await,
                    self.session().await
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // The watching browser follows the same events; give it the moment it may lag.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.browsers()[1].screen().await != target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn wait_for(&self, what: &str, timeout: Duration, mut ok: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !ok().await {
            assert!(
                Instant::now() < deadline,
                "{}: {what} did not happen within {timeout:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Start → three countdowns and captures → review.
    async fn capture_to_review(&mut self) {
        self.b().tap("#start").await;
        self.follow_until("review", Duration::from_secs(90)).await;
        assert!(
            self.b().image_loaded("#preview").await,
            "{}: the review shows no preview",
            self.name
        );
    }

    /// Review → copies → `copies` (the total follows) → pay: the payment screen with its QR.
    /// `languages`: also photograph the copies screen in every language. Returns the order.
    async fn order(&mut self, copies: u32, languages: bool) -> Value {
        self.b().tap("#accept").await;
        self.follow_until("choose_copies", Duration::from_secs(10)).await;
        assert_eq!(self.b().text("#total").await, "20 000 soʻm");
        assert!(
            !self.b().el("#copies-minus").await.is_enabled().await.unwrap(),
            "one copy is the least"
        );
        for _ in 1..copies {
            self.b().tap("#copies-plus").await;
        }
        assert_eq!(self.b().text("#copies-count").await, copies.to_string());
        assert_eq!(
            self.b().text("#total").await,
            format!("{} soʻm", grouped(i64::from(copies) * 20_000))
        );
        if languages {
            self.shoot_tapped(&format!("choose_copies-{copies}")).await;
            self.shoot_languages().await;
        }
        self.b().tap("#pay").await;
        self.follow_until("awaiting_payment", Duration::from_secs(10)).await;
        let b = self.b();
        self.wait_for("the QR image", Duration::from_secs(10), async || {
            b.image_loaded("#qr").await
        })
        .await;
        let order = self.session().await["order"].clone();
        assert!(
            order["order_id"].is_i64(),
            "{}: no order on the payment screen: {order}",
            self.name
        );
        order
    }

    /// The current screen in Russian and English too (tapped browser), then back to Uzbek: the
    /// longest texts must fit as well.
    async fn shoot_languages(&mut self) {
        let screen = self.b().screen().await;
        for lang in ["ru", "en", "uz"] {
            self.b().tap(&format!("#lang-{lang}")).await;
            if lang != "uz" {
                self.shoot_tapped(&format!("{screen}-{lang}")).await;
            }
        }
    }

    async fn close(mut self) {
        let (tap, watch) = (self.tap.take(), self.watch.take());
        if let (Some(tap), Some(watch)) = (tap, watch) {
            tokio::join!(tap.close(), watch.close());
        }
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("==== {}: daemon timeline ====\n{}", self.name, timeline(&self.d.log()));
            eprintln!("==== screenshots taken: {:?}", self.shots);
        }
    }
}

/// `photoboothd pay <order> --config <file>`: Payme's side of a payment, as a technician runs it.
async fn pay_with_cli(d: &Daemon, order_id: i64) {
    let config = d.config_path();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_photoboothd"))
            .arg("pay")
            .arg(order_id.to_string())
            .arg("--config")
            .arg(config)
            .env_remove("PAYME_KEY")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("STATE_DIRECTORY")
            .output()
    })
    .await
    .unwrap()
    .expect("run photoboothd pay");
    assert!(
        out.status.success(),
        "photoboothd pay {order_id} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn count_in(log: &[String], screen: &str) -> usize {
    log.iter().filter(|s| *s == screen).count()
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// A whole paid session: attract → countdown/capture ×3 → review → retake → review → 2 copies
/// (40 000 so'm) → QR → `photoboothd pay` → printing → done → attract; the prints are the strip.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paid_session_from_attract_screen_to_prints() {
    let Some(mut s) = Scenario::at_idle("paid", Cfg::default()).await else {
        return;
    };
    assert_eq!(s.b().text("#start").await, "Boshlash");
    assert!(
        s.b().text("#attract-price").await.contains("20 000 soʻm"),
        "the attract screen shows the price"
    );
    // The test config's checkout is Payme's sandbox: a small TEST badge says no real money.
    let b = s.b();
    s.wait_for("the sandbox badge", Duration::from_secs(10), async || {
        b.displayed("#test-badge").await
    })
    .await;
    assert_eq!(s.b().text("#test-badge").await, "TEST");

    s.capture_to_review().await;
    let log = s.b().screen_log().await;
    assert_eq!(count_in(&log, "countdown"), 3, "three countdowns: {log:?}");
    assert_eq!(count_in(&log, "capturing"), 3, "three captures: {log:?}");
    assert_eq!(s.b().text("#retake").await, "Qayta olish (2 ta qoldi)");
    assert!(s.b().displayed("#cancel").await, "review offers cancel");
    assert!(s.b().displayed("#timer").await, "review shows its time limit");
    let first_preview = s.b().js("return document.getElementById('preview').src").await;
    s.shoot_languages().await;

    // One retake: three more shots, a new preview, one retake left.
    s.b().tap("#retake").await;
    s.b().wait_left("review").await;
    s.follow_until("review", Duration::from_secs(90)).await;
    assert_eq!(s.b().text("#retake").await, "Qayta olish (1 ta qoldi)");
    let second_preview = s.b().js("return document.getElementById('preview').src").await;
    assert_ne!(first_preview, second_preview, "the retake's preview is a new image");

    let order = s.order(2, true).await;
    let order_id = order["order_id"].as_i64().unwrap();
    assert_eq!(order["amount"], 40_000);
    assert_eq!(order["copies"], 2);
    assert_eq!(s.b().text("#pay-amount").await, "40 000 soʻm");
    s.shoot_languages().await;
    assert_eq!(s.b().text("#pay-order").await, format!("Buyurtma № {order_id}"));
    let ttl = s.b().text("#pay-timer").await;
    assert!(ttl == "10:00" || ttl.starts_with("9:"), "10 minutes to pay: {ttl}");
    assert!(
        s.b().displayed("#cancel").await,
        "payment can be cancelled before paying"
    );

    pay_with_cli(&s.d, order_id).await;
    s.follow_until("done", Duration::from_secs(60)).await;
    assert_eq!(s.b().text("#done-order").await, format!("Buyurtma № {order_id}"));
    s.shoot_languages().await;
    s.follow_until("idle", Duration::from_secs(20)).await;

    // The UI showed each stage the daemon went through (printing only if the print took longer
    // than the daemon's half-second look at the order).
    let log = s.b().screen_log().await;
    let daemon_log = s.d.log();
    for stage in ["review", "choose_copies", "awaiting_payment", "done"] {
        assert!(
            daemon_log.contains(&format!("to=\"{stage}\"")),
            "the daemon log has no stage {stage}"
        );
        assert!(
            log.contains(&stage.to_string()),
            "the page never showed {stage}: {log:?}"
        );
    }
    if daemon_log.contains("to=\"printing\"") {
        assert!(
            log.contains(&"printing".to_string()),
            "the page never showed printing: {log:?}"
        );
    }

    // Two prints, one per copy, each the composed 2×6 strip page twice side by side.
    let prints = s.d.prints();
    assert_eq!(prints.len(), 2, "{prints:?}");
    let session_id =
        s.d.db()
            .query_row("SELECT id FROM sessions WHERE order_id = ?1", [order_id], |r| {
                r.get::<_, i64>(0)
            });
    let page = image::open(
        s.d.data_dir()
            .join("sessions")
            .join(session_id.unwrap().to_string())
            .join("page.png"),
    )
    .expect("the session's composed page")
    .to_rgb8();
    for name in &prints {
        let print = image::open(s.d.data_dir().join("prints").join(name))
            .expect("a PNG print")
            .to_rgb8();
        assert_eq!(
            print.dimensions(),
            (1200, 1800),
            "{name}: not the strip-2x6 page (a receipt is 576x720)"
        );
        let (left, right) = (
            image::imageops::crop_imm(&print, 0, 0, 600, 1800),
            image::imageops::crop_imm(&print, 600, 0, 600, 1800),
        );
        assert!(left.to_image() == right.to_image(), "{name}: the two strips differ");
        assert!(print == page, "{name}: not the session's composed page");
    }
    // Shown with --nocapture (and by the scenario itself on a failure): the session as the log tells it.
    eprintln!("==== paid session, daemon timeline ====\n{}", timeline(&s.d.log()));
    s.close().await;
}

/// An order left unpaid past its TTL: the payment screen counts down, the page says no money was
/// taken, and the booth goes back to the attract screen by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unpaid_order_expires_back_to_the_attract_screen() {
    let cfg = Cfg {
        order_ttl_s: 5,
        error_timeout_s: 2,
        ..Cfg::default()
    };
    let Some((mut s, order_id)) = Scenario::awaiting_payment("expiry", cfg).await else {
        return;
    };
    let ttl = s.b().text("#pay-timer").await;
    assert!(ttl.starts_with("0:0"), "five seconds to pay: {ttl}");
    assert_eq!(s.b().text("#pay-amount").await, "20 000 soʻm");

    // The error screen lasts error_timeout_s = 2 s: check it first, then photograph it.
    s.reach("error-payment_expired", Duration::from_secs(30)).await;
    assert_eq!(s.b().text("#error-title").await, "Toʻlov vaqti tugadi");
    assert!(
        s.b().text("#error-body").await.contains("pul olinmadi"),
        "the page says no money was taken"
    );
    assert!(
        !s.b().displayed("#error-order").await,
        "no order number to call staff with: nothing was paid"
    );
    s.shoot(None).await;
    s.follow_until("idle", Duration::from_secs(15)).await;

    assert_eq!(s.d.order(&order_id.to_string()).await["status"], "expired");
    assert!(s.d.prints().is_empty());
    s.close().await;
}

/// The roll is used up (the media counter at 0): the attract screen becomes an out-of-service
/// screen in the customer's language, nothing starts a session, and no order is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn out_of_paper_shows_out_of_service_and_takes_no_order() {
    let cfg = Cfg {
        capacity: 1,
        ..Cfg::default()
    };
    let Some(mut s) = Scenario::at_idle("paper", cfg).await else {
        return;
    };

    // The last print on the roll: a stand-alone order paid like Payme would.
    let (order_id, _) = s.d.new_order(1).await;
    pay_with_cli(&s.d, order_id.parse().unwrap()).await;
    s.d.wait_for_status(&order_id, "printed").await;
    s.follow_until("out_of_service", Duration::from_secs(20)).await;
    assert_eq!(s.b().text("#oos-reason").await, "Printerda qogʻoz tugadi.");
    assert!(!s.b().displayed("#start").await, "no start button while out of service");

    // Taps on the screen, on the hidden start button, and the big GPIO button start nothing.
    s.b().tap("[data-screen=out_of_service]").await;
    assert!(
        s.b().el("#start").await.click().await.is_err(),
        "the hidden start button cannot be tapped"
    );
    let refusals = |log: &str| log.matches("session not started").count();
    let before = refusals(&s.d.log());
    let (status, v) = s.d.kiosk("POST", "/api/dev/button", r#"{"event":"press"}"#).await;
    assert_eq!(status, 200, "{v}");
    let d = &s.d;
    s.wait_for("the button press refused", Duration::from_secs(10), async || {
        refusals(&d.log()) > before
    })
    .await;
    s.d.sells_nothing(503, "media_counter_empty").await;
    assert_eq!(s.b().screen().await, "out_of_service");
    assert_eq!(s.session().await["stage"], "idle");
    assert_eq!(s.d.count("SELECT COUNT(*) FROM sessions"), 0, "no session was started");
    assert_eq!(
        s.d.count("SELECT COUNT(*) FROM orders"),
        1,
        "no order besides the one that used the roll"
    );

    for (lang, reason) in [
        ("ru", "В принтере закончилась бумага."),
        ("en", "The printer is out of paper."),
    ] {
        for b in s.browsers() {
            b.tap(&format!("#lang-{lang}")).await;
        }
        assert_eq!(s.b().text("#oos-reason").await, reason);
        s.shoot(Some(&format!("out_of_service-{lang}"))).await;
    }
    s.close().await;
}

/// The printer cannot print at all (the file printer's folder cannot exist: its parent is a
/// file): out of service from the start, "not ready", nothing taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn printer_not_ready_shows_out_of_service_and_takes_no_order() {
    let Some(turn) = browser_turn().await else {
        return;
    };
    let d = Daemon::start_with_config(|data| {
        let file = data.parent().unwrap().join("not-a-folder");
        std::fs::write(&file, "a file where the prints folder's parent should be").unwrap();
        booth_config(
            data,
            &Cfg {
                printer_dir: Some(file.join("prints")),
                ..Cfg::default()
            },
        )
    })
    .await;
    let mut s = Scenario::with_daemon("offline", turn, d).await;
    s.follow_until("out_of_service", Duration::from_secs(20)).await;
    assert_eq!(s.b().text("#oos-reason").await, "Printer hozir tayyor emas.");
    assert!(!s.b().displayed("#start").await);
    s.d.sells_nothing(503, "printer_offline").await;
    assert_eq!(s.d.count("SELECT COUNT(*) FROM sessions"), 0);
    assert_eq!(s.d.count("SELECT COUNT(*) FROM orders"), 0);
    s.close().await;
}

/// UZ → RU → EN → UZ changes the texts; a language picked for a session ends with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn language_switch_changes_the_texts_for_one_session() {
    let Some(mut s) = Scenario::at_idle("lang", Cfg::default()).await else {
        return;
    };
    assert_eq!(s.b().text("#start").await, "Boshlash");
    for (lang, start, title, shots) in [
        ("ru", "Начать", "Сделайте фото!", "3 снимка · "),
        ("en", "Start", "Strike a pose!", "3 photos · "),
        ("uz", "Boshlash", "Suratga tushing!", "3 ta surat · "),
    ] {
        for b in s.browsers() {
            b.tap(&format!("#lang-{lang}")).await;
        }
        assert_eq!(s.b().text("#start").await, start);
        assert_eq!(s.b().text("[data-screen=idle] h1").await, title);
        let price = s.b().text("#attract-price").await;
        assert!(price.starts_with(shots), "{lang}: {price:?}");
        assert_eq!(s.b().js("return document.documentElement.lang").await, lang);
        assert_eq!(
            s.b()
                .js("return document.getElementById('lang-' + document.documentElement.lang).className")
                .await,
            "btn lang active"
        );
        s.shoot(Some(&format!("idle-{lang}"))).await;
    }

    // Russian for this customer's session, then the booth's default again.
    for b in s.browsers() {
        b.tap("#lang-ru").await;
    }
    s.b().tap("#start").await;
    let b = s.b();
    s.wait_for("the countdown", Duration::from_secs(10), async || {
        b.screen().await == "countdown"
    })
    .await;
    assert_eq!(s.b().text("#countdown-shot").await, "Снимок 1 из 3");
    s.follow_until("review", Duration::from_secs(90)).await;
    assert_eq!(s.b().text("#accept").await, "Печатать");
    assert_eq!(s.b().text("#retake").await, "Переснять (осталось 2)");
    s.b().tap("#cancel").await;
    s.follow_until("idle", Duration::from_secs(10)).await;
    assert_eq!(
        s.b().text("#start").await,
        "Boshlash",
        "back to the default language after the session"
    );
    s.close().await;
}

/// A camera that cannot save and a page that cannot be composed: error screens that say nothing
/// was charged, then the attract screen again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn camera_and_compose_failures_say_nothing_was_charged() {
    let Some(mut s) = Scenario::at_idle("errors", Cfg::default()).await else {
        return;
    };

    // The sessions folder is a file: the camera cannot save its first shot.
    let sessions = s.d.data_dir().join("sessions");
    let _ = std::fs::remove_dir(&sessions);
    std::fs::write(&sessions, "not a folder").unwrap();
    s.b().tap("#start").await;
    s.follow_until("error-camera_failed", Duration::from_secs(30)).await;
    assert_eq!(s.b().text("#error-title").await, "Kamera ishlamadi");
    assert!(s.b().text("#error-body").await.contains("pul olinmadi"));
    s.shoot_languages().await;
    s.b().tap("#error-ok").await;
    s.follow_until("idle", Duration::from_secs(10)).await;
    std::fs::remove_file(&sessions).unwrap();

    // The composed page's temporary file name is taken by a folder: the shots work, composing fails.
    s.b().tap("#start").await;
    let d = &s.d;
    let mut session_id = None;
    s.wait_for("the new session", Duration::from_secs(10), async || {
        let (_, v) = d.kiosk("GET", "/api/session", "").await;
        session_id = v["session_id"].as_i64();
        session_id.is_some()
    })
    .await;
    let dir = photoboothd::booth::session::session_dir(&s.d.data_dir(), session_id.unwrap());
    std::fs::create_dir_all(dir.join(".page.png.tmp")).unwrap();
    s.follow_until("error-compose_failed", Duration::from_secs(90)).await;
    assert_eq!(s.b().text("#error-title").await, "Suratlarni tayyorlab boʻlmadi");
    assert!(s.b().text("#error-body").await.contains("pul olinmadi"));
    s.follow_until("idle", Duration::from_secs(20)).await;
    assert_eq!(
        s.d.count("SELECT COUNT(*) FROM orders"),
        0,
        "no order for failed sessions"
    );
    s.close().await;
}

/// Paid, but the print fails for good: the page tells the customer to call staff and shows the
/// order number big.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn print_failure_after_payment_shows_the_order_number_for_staff() {
    let Some((mut s, order_id)) = Scenario::awaiting_payment("printfail", Cfg::default()).await else {
        return;
    };

    // The composed page is gone before the print: no retry can fix that.
    let session_id = s.session().await["session_id"].as_i64().unwrap();
    std::fs::remove_file(photoboothd::booth::session::session_dir(&s.d.data_dir(), session_id).join("page.png"))
        .unwrap();
    pay_with_cli(&s.d, order_id).await;
    s.follow_until("error-print_failed", Duration::from_secs(60)).await;
    assert_eq!(s.b().text("#error-title").await, "Kechirasiz, printer chop eta olmadi");
    assert!(s.b().text("#error-body").await.contains("Xodimni chaqiring"));
    assert!(s.b().displayed("#error-order").await);
    assert_eq!(s.b().text("#error-order").await, format!("Buyurtma № {order_id}"));
    assert!(
        !s.b().displayed("#error-ok").await,
        "nothing hides the number before staff sees it"
    );
    s.shoot_languages().await;
    assert_eq!(s.d.order(&order_id.to_string()).await["status"], "print_failed");
    s.close().await;
}

/// Payme holds a transaction: the daemon refuses the customer's cancel and the page hides it; the
/// paid order waits for a printer that went away; Payme refunds it: "payment cancelled".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_refused_while_paying_and_a_refund_ends_the_session() {
    let Some((mut s, order_id)) = Scenario::awaiting_payment("refund", Cfg::default()).await else {
        return;
    };
    let order_id = order_id.to_string();
    let amount = s.d.order(&order_id).await["amount_tiyin"].as_i64().unwrap();

    // The customer is typing the card code: a live Payme transaction holds the order.
    let payme_id = common::payme_id(7);
    s.d.create_tx(&payme_id, &order_id, amount).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!(
        "DEBUG after create {} / {}",
        s.session().await["order"]["payment_in_progress"],
        s.d.order(&order_id).await["payment_in_progress"]
    );
    s.b().tap("#cancel").await;
    let b = s.b();
    s.wait_for("cancel refused and hidden", Duration::from_secs(10), async || {
        b.displayed("#pay-in-progress").await && !b.displayed("#cancel").await
    })
    .await;
    assert_eq!(
        s.b().text("#pay-in-progress").await,
        "Toʻlov jarayonda — uni ilovada yakunlang"
    );
    assert_eq!(s.session().await["stage"], "awaiting_payment");
    s.shoot_tapped("awaiting_payment-in_progress").await;

    // The printer goes away (its folder becomes a file), then the payment completes.
    let prints = s.d.data_dir().join("prints");
    let _ = std::fs::remove_dir(&prints);
    std::fs::write(&prints, "not a folder").unwrap();
    let v = s.d.rpc("PerformTransaction", json!({ "id": payme_id })).await;
    assert!(v.get("error").is_none_or(Value::is_null), "{v}");
    s.follow_until("printing", Duration::from_secs(20)).await;
    let b = s.b();
    s.wait_for("the printer wait note", Duration::from_secs(20), async || {
        !b.text("#print-status").await.is_empty()
    })
    .await;
    assert_eq!(
        s.b().text("#print-status").await,
        "Printer tayyorlanmoqda, biroz kuting…"
    );
    s.shoot(Some("printing-waiting")).await;

    // Payme refunds: the session ends with "payment cancelled", then the attract screen.
    let v =
        s.d.rpc("CancelTransaction", json!({ "id": payme_id, "reason": 5 }))
            .await;
    assert!(v.get("error").is_none_or(Value::is_null), "{v}");
    s.follow_until("error-payment_cancelled", Duration::from_secs(20)).await;
    assert_eq!(s.b().text("#error-title").await, "Toʻlov bekor qilindi");
    s.follow_until("out_of_service", Duration::from_secs(20)).await;
    assert_eq!(s.d.order(&order_id).await["status"], "refunded");
    s.close().await;
}

/// The customer's card is declined: Payme cancels its transaction before perform (state -1), the
/// order is payable again and nothing holds it, so the payment screen shows the payment steps and
/// the cancel button again instead of "payment in progress" until the order expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_declined_card_gives_the_payment_screen_back() {
    let Some((s, order_id)) = Scenario::awaiting_payment("declined", Cfg::default()).await else {
        return;
    };
    let order_id = order_id.to_string();
    let amount = s.d.order(&order_id).await["amount_tiyin"].as_i64().unwrap();
    let payme_id = common::payme_id(8);
    s.d.create_tx(&payme_id, &order_id, amount).await;
    // The screen has seen Payme take the order; the customer's cancel is refused.
    s.d.wait_for(
        "the screen to see the payment in progress",
        || s.d.session_view(),
        |v| v["order"]["payment_in_progress"] == true,
    )
    .await;
    s.b().tap("#cancel").await;
    let b = s.b();
    s.wait_for("cancel refused and hidden", Duration::from_secs(10), async || {
        b.displayed("#pay-in-progress").await && !b.displayed("#cancel").await
    })
    .await;

    // The card is declined: Payme cancels its transaction before perform.
    let v =
        s.d.rpc("CancelTransaction", json!({ "id": payme_id, "reason": 3 }))
            .await;
    assert_eq!(v["result"]["state"], -1, "{v}");
    let b = s.b();
    s.wait_for(
        "the payment steps and cancel again",
        Duration::from_secs(10),
        async || {
            b.displayed("#pay-steps").await && !b.displayed("#pay-in-progress").await && b.displayed("#cancel").await
        },
    )
    .await;
    assert_eq!(s.session().await["stage"], "awaiting_payment");
    s.close().await;
}

/// Without the event stream the page polls /api/session and still follows the booth; with the
/// daemon gone it says it is connecting, and it reloads itself from the daemon once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn polling_fallback_and_a_daemon_restart() {
    let Some(turn) = browser_turn().await else {
        return;
    };
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut s = Scenario::start(
        "poll",
        turn,
        Cfg {
            kiosk_port: port,
            ..Cfg::default()
        },
    )
    .await;
    let url = format!("http://{}/?transport=poll", s.d.kiosk);
    for b in s.browsers() {
        b.open(&url).await;
    }
    assert_eq!(s.b().js("return booth.transport").await, "poll");
    s.follow_until("idle", Duration::from_secs(10)).await;
    s.b().tap("#start").await;
    s.follow_until("review", Duration::from_secs(90)).await;
    let log = s.b().screen_log().await;
    assert!(
        log.contains(&"countdown".to_string()) && log.contains(&"capturing".to_string()),
        "{log:?}"
    );
    s.b().tap("#cancel").await;
    s.follow_until("idle", Duration::from_secs(10)).await;

    // The daemon dies: after a few seconds without an answer the page says it is reconnecting.
    s.d.kill();
    let b = s.b();
    s.wait_for("the connecting overlay", Duration::from_secs(15), async || {
        b.displayed("#offline").await
    })
    .await;
    assert_eq!(s.b().text("#offline .offline-title").await, "Ulanmoqda…");
    let w = s.browsers()[1];
    s.wait_for("the overlay on the other page", Duration::from_secs(15), async || {
        w.displayed("#offline").await
    })
    .await;
    s.shoot(Some("connecting")).await;

    // Back on the same port: the page reloads itself and shows the attract screen again.
    s.d.restart_same_config().await;
    let b = s.b();
    s.wait_for("the page back", Duration::from_secs(20), async || {
        b.screen().await == "idle" && !b.displayed("#offline").await
    })
    .await;
    assert_eq!(s.b().screen_log().await, ["idle"], "a freshly loaded page");
    s.close().await;
}

// ---------------------------------------------------------------------------------------------
// The owner's service menu (assets/ui/service.js).

/// The service screen the page shows: `none`, `pin` or `menu`.
async fn service_screen(b: &Browser) -> String {
    let v = b
        .js("return (window.boothService && window.boothService.screen) || 'none'")
        .await;
    v.as_str().unwrap_or("none").to_string()
}

async fn wait_service_screen(b: &Browser, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while service_screen(b).await != want {
        assert!(Instant::now() < deadline, "the service screen never became {want}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A finger held on `css` for `hold`.
async fn long_press(b: &Browser, css: &str, hold: Duration) {
    use fantoccini::actions::{InputSource, PointerAction, TouchActions};
    let element = b.el(css).await;
    let press = TouchActions::new("finger".into())
        .then(PointerAction::MoveToElement {
            element,
            duration: None,
            x: 0.0,
            y: 0.0,
        })
        .then(PointerAction::Down { button: 0 })
        .then(PointerAction::Pause { duration: hold })
        .then(PointerAction::Up { button: 0 });
    b.c()
        .perform_actions(press)
        .await
        .unwrap_or_else(|e| panic!("cannot long-press {css}: {e}"));
}

async fn type_pin(b: &Browser, pin: &str) {
    for digit in pin.chars() {
        b.tap(&format!("#svc-key-{digit}")).await;
    }
    b.tap("#svc-key-ok").await;
}

/// Saves the page as `service-<label>-<W>x<H>.png` and checks the visible service buttons are
/// big enough for a finger.
async fn shoot_service(b: &Browser, label: &str) {
    let png = b.c().screenshot().await.expect("screenshot");
    std::fs::write(
        screens_dir().join(format!("service-{label}-{}.png", b.size_label())),
        png,
    )
    .expect("save screenshot");
    let small = b
        .js(
            "var bad = [];
             document.querySelectorAll('#service button').forEach(function (e) {
               var r = e.getBoundingClientRect();
               if (r.width > 0 && (r.width < 64 || r.height < 64)) bad.push(e.id + ' ' + Math.round(r.width) + 'x' + Math.round(r.height));
             });
             return bad;",
        )
        .await;
    assert_eq!(small, json!([]), "{label}: service buttons under 64 px");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_menu_opens_with_a_long_press_in_the_corner_and_the_pin() {
    let Some(turn) = browser_turn().await else {
        return;
    };
    let d = Daemon::start_with_config(|data_dir| {
        format!(
            "{}\n[service]\npin = \"0123\"\n",
            booth_config(data_dir, &Cfg::default())
        )
    })
    .await;
    let b = Browser::launch(&turn.tools, SMALL).await;
    b.open(&format!("http://{}/", d.kiosk)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while b.screen().await != "idle" {
        assert!(Instant::now() < deadline, "the attract screen never showed");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // A short tap in the corner neither opens the menu nor starts a session.
    b.tap("#service-corner").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(service_screen(&b).await, "none");
    assert_eq!(b.screen().await, "idle");

    long_press(&b, "#service-corner", Duration::from_millis(2600)).await;
    wait_service_screen(&b, "pin").await;
    shoot_service(&b, "pin").await;

    type_pin(&b, "9999").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.text("#svc-pin-message").await.is_empty() {
        assert!(Instant::now() < deadline, "a wrong PIN shows no message");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(b.text("#svc-pin-message").await, "PIN notoʻgʻri");
    assert_eq!(service_screen(&b).await, "pin");

    type_pin(&b, "0123").await;
    wait_service_screen(&b, "menu").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.displayed("#svc-refill").await {
        assert!(Instant::now() < deadline, "the menu never showed its actions");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(b.text("#svc-printer").await.starts_with("Printer"));
    shoot_service(&b, "menu").await;

    // An event started from the menu: the attract screen shows its title and that prints are free.
    b.js("document.getElementById('svc-event-max').value = '3';
          document.getElementById('svc-event-title').value = 'Aziza & Bobur';")
        .await;
    b.tap("#svc-event-start").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.displayed("#svc-event-stop").await {
        assert!(Instant::now() < deadline, "the menu never showed the running event");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(b.text("#svc-event-line").await.contains("Aziza & Bobur"));

    b.tap("#svc-lock").await;
    wait_service_screen(&b, "none").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.text("#attract-price").await != "Aziza & Bobur" {
        assert!(Instant::now() < deadline, "the attract screen does not show the event");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let png = b.c().screenshot().await.expect("screenshot");
    std::fs::write(screens_dir().join("service-event-idle-1024x600.png"), png).expect("save screenshot");
    assert_eq!(d.service("GET", "/api/service/summary", None, "").await.0, 401);
    assert_eq!(
        d.count("SELECT count(*) FROM sessions"),
        0,
        "no session was started underneath"
    );
    b.close().await;
}

// Digital copies: the done screen's QR and the download page on a phone.

/// The kiosk, opened on a booth whose session is on its done screen, shows the download link's QR
/// with its words, laid out without faults; saved as `<shot>-<W>x<H>.png`.
async fn done_screen_shows_the_download_qr(tools: &Tools, d: &Daemon, shot: &str) {
    let kiosk = Browser::launch(tools, SMALL).await;
    kiosk.open(&format!("http://{}/", d.kiosk)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(kiosk.screen().await == "done" && kiosk.image_loaded("#done-qr").await) {
        assert!(Instant::now() < deadline, "no QR on the done screen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(kiosk.displayed("#done-digital").await);
    assert!(!kiosk.text("#done-digital").await.is_empty());
    kiosk.settle(false).await;
    let problems = kiosk.layout_problems().await;
    let png = kiosk.c().screenshot().await.expect("screenshot");
    std::fs::write(screens_dir().join(format!("{shot}-{}.png", kiosk.size_label())), png).unwrap();
    assert!(problems.is_empty(), "done screen with QR: {problems:?}");
    kiosk.close().await;
}

/// A phone's screen (CSS pixels): where the download page is opened.
const PHONE: (u32, u32) = (390, 844);

#[tokio::test]
async fn the_done_screen_shows_the_download_qr_and_the_page_fits_a_phone() {
    let Some(turn) = browser_turn().await else {
        return;
    };
    let d = Daemon::start_with_config(|data| {
        booth_config(
            data,
            &Cfg {
                done_timeout_s: 60,
                ..Cfg::default()
            },
        )
    })
    .await;
    // The session through the API; the browsers only look.
    d.to_copies_screen().await;
    let (status, order) = d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#).await;
    assert_eq!(status, 200, "{order}");
    let id = order["order_id"].as_i64().unwrap();
    d.pay(&id.to_string(), order["amount_tiyin"].as_i64().unwrap()).await;
    let done = d.wait_stage("done").await;
    let url = done["order"]["download_url"]
        .as_str()
        .expect("a download link")
        .to_string();

    done_screen_shows_the_download_qr(&turn.tools, &d, "digital-done").await;

    let phone = Browser::launch(&turn.tools, PHONE).await;
    phone.open(&url).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !phone.image_loaded("figure img").await {
        assert!(Instant::now() < deadline, "the page's first image never loaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fit = phone
        .js("var vw = window.innerWidth, bad = [];
             if (document.documentElement.scrollWidth > vw) bad.push('scrolls sideways');
             document.querySelectorAll('img, a').forEach(function (e) {
               var r = e.getBoundingClientRect();
               if (r.left < -1 || r.right > vw + 1) bad.push('outside: ' + e.outerHTML.slice(0, 60));
               if (e.tagName === 'A' && r.height < 44) bad.push('small link: ' + e.textContent);
             });
             if (document.scripts.length) bad.push('has a script');
             return bad;")
        .await;
    let png = phone.c().screenshot().await.expect("screenshot");
    std::fs::write(
        screens_dir().join(format!("digital-download-{}.png", phone.size_label())),
        png,
    )
    .unwrap();
    assert_eq!(fit, json!([]), "the download page at {PHONE:?}");
    let saves = phone.js("return document.querySelectorAll('a[download]').length").await;
    assert_eq!(saves, json!(2 * 4), "save and full size for the page and three shots");
    phone.close().await;
}

/// At a prepaid event a guest's done screen shows the same download QR as a paying customer's.
#[tokio::test]
async fn an_event_guests_done_screen_shows_the_download_qr() {
    let Some(turn) = browser_turn().await else {
        return;
    };
    let d = Daemon::start_with_config(|data| {
        let cfg = Cfg {
            done_timeout_s: 60,
            ..Cfg::default()
        };
        booth_config(data, &cfg).replace("language = \"uz\"\n", "language = \"uz\"\nmode = \"event\"\n")
    })
    .await;
    d.to_copies_screen().await;
    let (status, order) = d.kiosk("POST", "/api/session/print", r#"{"copies": 1}"#).await;
    assert_eq!((status, order["amount_tiyin"].as_i64()), (200, Some(0)), "{order}");
    let done = d.wait_stage("done").await;
    assert!(done["order"]["download_url"].is_string(), "{done}");

    done_screen_shows_the_download_qr(&turn.tools, &d, "event-done").await;
    assert_eq!(d.count("SELECT count(*) FROM payme_transactions"), 0);
}

// Every screen shape: one session walked at each of the booth's screen sizes.

/// The screens a booth is built with: the first Pi display, the common 7" and 10" panels, a TV,
/// the Pi Touch Display 2 standing (its native way) and a monitor on end.
const SIZES: [(u32, u32); 6] = [
    (800, 480),
    (1024, 600),
    (1280, 800),
    (1920, 1080),
    (720, 1280),
    (1080, 1920),
];

/// How the walk gets from one stop to the next.
#[derive(Clone, Copy, Debug)]
enum Reach {
    /// The booth shows it by itself (first screen, or the next stage after a wait).
    Wait,
    Tap(&'static str),
    /// The sessions folder becomes a file, then start: the first still cannot be saved.
    CameraFails,
    /// Back from the camera error: the folder again, dismiss.
    CameraBack,
    /// The printer's folder becomes a file, then Payme pays: the print waits on "printing".
    PayWithPrinterAway,
    /// The printer's folder again: the print goes out, "done".
    PrinterBack,
    /// The owner's finger held on the service corner: the PIN pad.
    LongPress(&'static str),
    /// The PIN typed on the pad and OK: the service menu.
    Pin(&'static str),
}

/// One stop of the walk: the screen the page must show (`error-<code>` for an error), and whether
/// it is checked and photographed at every size there.
struct Stop {
    screen: &'static str,
    reach: Reach,
    check: bool,
}

const fn stop(screen: &'static str, reach: Reach) -> Stop {
    Stop {
        screen,
        reach,
        check: true,
    }
}

/// The customer's screens in the order one session meets them. A screen added to the kiosk joins
/// here (with a `Reach` for how to get to it), and is then checked at every size like the rest.
const WALK: &[Stop] = &[
    stop("idle", Reach::Wait),
    stop("error-camera_failed", Reach::CameraFails),
    Stop {
        screen: "idle",
        reach: Reach::CameraBack,
        check: false,
    },
    stop("countdown", Reach::Tap("#start")),
    stop("review", Reach::Wait),
    stop("choose_copies", Reach::Tap("#accept")),
    stop("awaiting_payment", Reach::Tap("#pay")),
    stop("printing", Reach::PayWithPrinterAway),
    stop("done", Reach::PrinterBack),
    // The walk's print used the one-print roll.
    stop("out_of_service", Reach::Tap("#done-ok")),
    // The owner's screens (service.js): the PIN pad, the menu with the event form, and the menu of
    // a running event with its gallery's QR code.
    stop("service-pin", Reach::LongPress("#service-corner")),
    stop("service-menu", Reach::Pin(WALK_PIN)),
    stop("service-event", Reach::Tap("#svc-event-start")),
];

/// The service menu's PIN in the walk's booth.
const WALK_PIN: &str = "0123";

/// What the owner could not use on a service screen: the same rules as `layout_problems` (inside
/// the screen, no text cut off, buttons and fields a finger's size, pictures loaded, nothing
/// scrolls), except that the menu's panel may scroll up and down (the last orders), never sideways.
const SERVICE_PROBLEMS: &str = "
    var bad = [], vw = window.innerWidth, vh = window.innerHeight;
    var root = document.getElementById('service');
    if (!root || root.hidden) return ['the service overlay is not shown'];
    var menu = root.querySelector('.svc-menu');
    function name(el) {
      return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
        (el.className && el.className.baseVal === undefined ? '.' + el.className.split(' ').join('.') : '') +
        ' [' + (el.textContent || '').trim().slice(0, 40) + ']';
    }
    var all = root.querySelectorAll('*');
    for (var i = 0; i < all.length; i++) {
      var el = all[i];
      if (el.closest('[hidden]') || el.matches('.spinner')) continue;
      var r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      var scrolled = !!menu && menu !== el && menu.contains(el);
      if (r.left < -1 || r.right > vw + 1 || (!scrolled && (r.top < -1 || r.bottom > vh + 1))) {
        bad.push('outside the screen: ' + name(el) + ' at ' + [r.left, r.top, r.right, r.bottom].map(Math.round));
      }
      if (scrolled) {
        var m = menu.getBoundingClientRect();
        if (r.left < m.left - 1 || r.right > m.right + 1) bad.push('outside the menu sideways: ' + name(el));
      }
      var css = getComputedStyle(el);
      if (/\\S/.test(el.textContent || '') && css.overflow === 'hidden' && el.scrollWidth > el.clientWidth + 1) {
        bad.push('text cut off: ' + name(el));
      }
      if (el.tagName === 'BUTTON' && (r.width < 64 || r.height < 64)) {
        bad.push('button under 64 px: ' + name(el) + ' ' + Math.round(r.width) + 'x' + Math.round(r.height));
      }
      if (el.tagName === 'INPUT' && r.height < 64) {
        bad.push('field under 64 px: ' + name(el) + ' ' + Math.round(r.height) + ' high');
      }
      if (el.tagName === 'IMG' && !(el.complete && el.naturalWidth > 0)) bad.push('not loaded: ' + name(el));
    }
    if (menu && menu.scrollWidth > menu.clientWidth + 1) bad.push('the menu scrolls sideways');
    root.querySelectorAll('.svc-pin').forEach(function (p) {
      if (p.scrollHeight > p.clientHeight + 1) bad.push('the PIN pad scrolls');
    });
    if (root.scrollHeight > root.clientHeight + 1 || root.scrollWidth > root.clientWidth + 1) bad.push('the overlay scrolls');
    if (document.documentElement.scrollHeight > vh || document.documentElement.scrollWidth > vw) {
      bad.push('the page scrolls');
    }
    return bad;";

/// What is wrong with the pictures on the screen: an image box not at its image's aspect ratio
/// (stretched or letterboxed), a frame that does not hug its image, a picture smaller than its
/// area allows, an unmirrored live view.
const IMAGE_PROBLEMS: &str = "
    var bad = [];
    var imgs = document.querySelectorAll('#screens > [data-screen]:not([hidden]) img.fit-img');
    for (var i = 0; i < imgs.length; i++) {
      var img = imgs[i];
      var name = img.id || img.className;
      if (img.getClientRects().length === 0 || getComputedStyle(img).visibility === 'hidden') continue;
      // A live view is a stream: `complete` stays false and a frame may be between loads; the walk
      // has already waited for live frames of at least 320 px, so only its box is judged here.
      var live = img.hasAttribute('data-live');
      if (live && !img.naturalWidth) continue;
      if ((!live && !img.complete) || !img.naturalWidth) { bad.push(name + ': not loaded'); continue; }
      var r = img.getBoundingClientRect();
      var ratio = (r.width / r.height) / (img.naturalWidth / img.naturalHeight);
      if (Math.abs(ratio - 1) > 0.02) {
        bad.push(name + ': box ' + Math.round(r.width) + 'x' + Math.round(r.height) + ' for an image of ' +
          img.naturalWidth + 'x' + img.naturalHeight);
      }
      var frame = img.parentElement.classList.contains('fit-frame') ? img.parentElement : img;
      var f = frame.getBoundingClientRect();
      var pad = parseFloat(getComputedStyle(frame).paddingLeft) || 0;
      if (f.width - r.width > 2 * pad + 2 || f.height - r.height > 2 * pad + 2) {
        bad.push(name + ': its frame ' + Math.round(f.width) + 'x' + Math.round(f.height) + ' does not hug it');
      }
      var a = img.closest('.fit').getBoundingClientRect();
      if (Math.abs(f.width - a.width) > 2 && Math.abs(f.height - a.height) > 2) {
        bad.push(name + ': ' + Math.round(f.width) + 'x' + Math.round(f.height) + ' in an area of ' +
          Math.round(a.width) + 'x' + Math.round(a.height) + ': not as large as it could be');
      }
      if (img.hasAttribute('data-live') && getComputedStyle(img).transform !== 'matrix(-1, 0, 0, 1, 0, 0)') {
        bad.push(name + ': the live view is not mirrored');
      }
    }
    return bad;";

impl Browser {
    async fn image_problems(&self) -> Vec<String> {
        let v = self.js(IMAGE_PROBLEMS).await;
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default()
    }

    /// Every visible picture loaded (a resize never reloads one, but the screen may be new).
    async fn images_loaded(&self) -> bool {
        self.js(
            "var imgs = document.querySelectorAll('#screens > [data-screen]:not([hidden]) img.fit-img');
             for (var i = 0; i < imgs.length; i++) {
               var img = imgs[i];
               if (img.getClientRects().length === 0 || getComputedStyle(img).visibility === 'hidden') continue;
               if (!img.complete || !img.naturalWidth) return false;
             }
             return true;",
        )
        .await
            == Value::Bool(true)
    }
}

struct Walk {
    d: Daemon,
    b: Browser,
    problems: Vec<String>,
    shots: usize,
}

impl Walk {
    /// The screen shown: the customer's, or over it the owner's (`service-pin`, `service-menu`,
    /// `service-event` once an event runs; `service-loading` while the menu fetches its figures).
    async fn current(&self) -> String {
        match service_screen(&self.b).await.as_str() {
            "none" => self.b.screen().await,
            "menu" if !self.b.displayed("#svc-refill").await => "service-loading".into(),
            "menu" if self.b.displayed("#svc-event-stop").await => "service-event".into(),
            other => format!("service-{other}"),
        }
    }

    async fn wait_screen(&self, screen: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.current().await != screen {
            if Instant::now() > deadline {
                let (_, v) = self.d.kiosk("GET", "/api/session", "").await;
                panic!(
                    "walk: never reached {screen}; the page shows {}; the daemon's view: {v}\n{}",
                    self.current().await,
                    timeline(&self.d.log())
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn reach(&mut self, reach: Reach) {
        let data = self.d.data_dir();
        match reach {
            Reach::Wait => {}
            Reach::Tap(css) => self.b.tap(css).await,
            Reach::CameraFails => {
                let sessions = data.join("sessions");
                let _ = std::fs::remove_dir(&sessions);
                std::fs::write(&sessions, "not a folder").unwrap();
                self.b.tap("#start").await;
            }
            Reach::CameraBack => {
                std::fs::remove_file(data.join("sessions")).unwrap();
                self.b.tap("#error-ok").await;
            }
            Reach::PayWithPrinterAway => {
                let prints = data.join("prints");
                let _ = std::fs::remove_dir(&prints);
                std::fs::write(&prints, "not a folder").unwrap();
                let (_, v) = self.d.kiosk("GET", "/api/session", "").await;
                pay_with_cli(&self.d, v["order"]["order_id"].as_i64().expect("an order")).await;
            }
            Reach::PrinterBack => {
                let prints = data.join("prints");
                std::fs::remove_file(&prints).unwrap();
                std::fs::create_dir(&prints).unwrap();
            }
            Reach::LongPress(css) => long_press(&self.b, css, Duration::from_millis(2600)).await,
            Reach::Pin(pin) => type_pin(&self.b, pin).await,
        }
    }

    /// The current screen at every size: laid out, photographed, checked.
    async fn check(&mut self, label: &str) {
        for size in SIZES {
            self.b
                .fit_viewport(size)
                .await
                .unwrap_or_else(|e| panic!("resize to {size:?}: {e}"));
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self.b.images_loaded().await {
                assert!(Instant::now() < deadline, "{label} at {size:?}: pictures never loaded");
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            self.b.settle(label == "countdown").await;
            if label == "service-event" {
                // The running event's gallery QR, scrolled into the menu's view: whole on screen.
                let qr = self
                    .b
                    .js("var q = document.getElementById('svc-gallery-qr');
                         if (!q) return 'no gallery QR';
                         q.scrollIntoView({block: 'center'});
                         var r = q.getBoundingClientRect();
                         return r.top >= 0 && r.bottom <= window.innerHeight && r.width >= 120 ? 'ok'
                           : 'gallery QR ' + Math.round(r.width) + ' px at ' + Math.round(r.top) + '..' + Math.round(r.bottom);")
                    .await;
                if qr != "ok" {
                    self.problems.push(format!("service-event at {size:?}: {qr}"));
                }
            }
            let png = self.b.c().screenshot().await.expect("screenshot");
            let file = format!("walk-{label}-{}.png", self.b.size_label());
            std::fs::write(screens_dir().join(&file), png).expect("save screenshot");
            self.shots += 1;
            let shown = self.current().await;
            assert_eq!(shown, label, "the screen changed during the check at {size:?}");
            let service = match label.starts_with("service-") {
                true => self.b.js(SERVICE_PROBLEMS).await,
                false => Value::Null,
            };
            let service = service
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            for p in self
                .b
                .layout_problems()
                .await
                .into_iter()
                .chain(self.b.image_problems().await)
                .chain(service)
            {
                self.problems.push(format!("{file}: {p}"));
            }
        }
    }
}

/// Acceptance: at each of the six screen sizes, on every customer screen of a session and on the
/// owner's service screens after it (`SERVICE_PROBLEMS`), no button,
/// text, QR or picture is cut off or outside the screen, nothing scrolls, buttons are at least
/// 64 px, and every picture is shown at its own aspect ratio, as large as its area allows, in a
/// frame that hugs it. The countdown shows the mirrored live view. Screenshots:
/// `target/ui-screens/walk-<screen>-<W>x<H>.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_screen_fits_every_screen_size() {
    let Some(turn) = browser_turn().await else {
        return;
    };
    let cfg = Cfg {
        shots: 1,
        // Long enough to check the countdown at six sizes on a loaded machine (30 is the most).
        countdown_s: 30,
        capacity: 1,
        done_timeout_s: 300,
        error_timeout_s: 300,
        review_timeout_s: 300,
        ..Cfg::default()
    };
    let d =
        Daemon::start_with_config(|data| format!("{}\n[service]\npin = \"{WALK_PIN}\"\n", booth_config(data, &cfg)))
            .await;
    let b = Browser::launch(&turn.tools, SIZES[3]).await;
    b.open(&format!("http://{}/", d.kiosk)).await;
    let mut walk = Walk {
        d,
        b,
        problems: Vec::new(),
        shots: 0,
    };
    // One shot a session: English says "1 photo" (its plural form `one`), then back to Uzbek.
    walk.wait_screen("idle", Duration::from_secs(30)).await;
    walk.b.tap("#lang-en").await;
    let price = walk.b.text("#attract-price").await;
    assert!(price.starts_with("1 photo · "), "{price:?}");
    walk.b.tap("#lang-uz").await;
    for stop in WALK {
        walk.reach(stop.reach).await;
        walk.wait_screen(stop.screen, Duration::from_secs(90)).await;
        if stop.screen == "countdown" {
            let b = &walk.b;
            let deadline = Instant::now() + Duration::from_secs(15);
            let probe = "var i = document.querySelector('#screens > [data-screen=countdown] img[data-live]');
                         return [booth.liveOn, i.naturalWidth, booth.liveFrames, i.src, booth.mirror]";
            loop {
                let v = b.js(probe).await;
                if v[0] == Value::Bool(true) && v[1].as_u64().unwrap_or(0) >= 320 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the countdown never showed live frames >= 320 px wide: [on, width, frames, src, mirror] = {v}"
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        if stop.check {
            walk.check(stop.screen).await;
        }
    }
    assert!(
        walk.problems.is_empty(),
        "{} layout problems in {} screenshots:\n{}",
        walk.problems.len(),
        walk.shots,
        walk.problems.join("\n")
    );
    walk.b.close().await;
}

/// The live view fails (the fake `rpicam-vid` finds the camera busy, every time): the countdown is
/// the plain one, without the mirror, and the session goes on to its review.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_live_view_falls_back_to_the_plain_countdown() {
    let Some(turn) = browser_turn().await else {
        return;
    };
    let fake = tempfile::tempdir().unwrap();
    let cfg = Cfg {
        shots: 1,
        // Time to check and photograph it on a loaded machine.
        countdown_s: 10,
        camera_backend: "rpicam",
        ..Cfg::default()
    };
    let mut d = Daemon::start_with_config(|data| booth_config(data, &cfg)).await;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/camera");
    d.env = vec![
        ("PATH".into(), fixtures.join("rpicam").display().to_string()),
        ("FAKE_DIR".into(), fake.path().display().to_string()),
        ("FAKE_MARKER".into(), format!("e2e-{}", std::process::id())),
        ("FAKE_LIVE_MODE".into(), "busy".into()),
    ];
    d.restart_same_config().await;
    let mut s = Scenario::with_daemon("nolive", turn, d).await;
    s.follow_until("idle", Duration::from_secs(10)).await;
    s.b().tap("#start").await;
    s.reach("countdown", Duration::from_secs(10)).await;
    let b = s.b();
    s.wait_for("the page to try the live view", Duration::from_secs(10), async || {
        b.js("return booth.mirror.retryAt > 0").await == Value::Bool(true)
            || std::fs::read_to_string(fake.path().join("live-count")).is_ok()
    })
    .await;
    assert_eq!(s.b().js("return booth.liveOn").await, Value::Bool(false));
    assert!(s.b().displayed("#countdown-number").await);
    let mirror = s
        .b()
        .js("return getComputedStyle(document.querySelector('#screens > [data-screen=countdown] .live-stage')).visibility")
        .await;
    assert_eq!(mirror, "hidden", "no mirror without frames");
    s.shoot_tapped("countdown-no_live").await;
    s.follow_until("review", Duration::from_secs(60)).await;
    assert!(s.d.log().contains("live view failed"), "{}", s.d.log());
    s.close().await;
}

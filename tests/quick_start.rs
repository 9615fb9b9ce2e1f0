//! The README's quick start, as a new user runs it: `photoboothd` with no arguments in an empty
//! folder (built-in defaults: kiosk on 127.0.0.1:8080, webhook on 127.0.0.1:8081, data in ./data),
//! an order from the kiosk API, `photoboothd pay <order_id>`, and two prints in data/prints.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use photoboothd::client;
use photoboothd::daemon::RuntimeInfo;

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn quick_start_on_built_in_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_photoboothd");
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let daemon = Killed(
        Command::new(bin)
            .current_dir(dir.path())
            .env_remove("PAYME_KEY")
            .env_remove("STATE_DIRECTORY")
            .env_remove("CREDENTIALS_DIRECTORY")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let data = dir.path().join("data");
    let deadline = Instant::now() + Duration::from_secs(20);
    let info = loop {
        match RuntimeInfo::read(&data) {
            Some(info) if info.pid == daemon.0.id() => break info,
            _ => {}
        }
        let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "the booth did not start on defaults (is port 8080 or 8081 taken?):\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(info.kiosk.to_string(), "127.0.0.1:8080");
    assert_eq!(info.webhook.to_string(), "127.0.0.1:8081");

    // curl -X POST localhost:8080/api/generate-qr -d '{"copies":2}'
    let r = client::request(
        info.kiosk,
        "POST",
        "/api/generate-qr",
        &[("content-type", "application/x-www-form-urlencoded")],
        r#"{"copies":2}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    let order = r.json().unwrap();
    let id = order["order_id"].as_i64().unwrap().to_string();
    assert_eq!(order["amount"], 40_000);
    assert_eq!(order["status"], "awaiting_payment");

    // photoboothd pay <order_id>
    let pay = Command::new(bin)
        .current_dir(dir.path())
        .args(["pay", &id])
        .env_remove("PAYME_KEY")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&pay.stdout);
    assert!(
        pay.status.success(),
        "pay failed: {out}{}",
        String::from_utf8_lossy(&pay.stderr)
    );
    for method in ["CheckPerformTransaction", "CreateTransaction", "PerformTransaction"] {
        assert!(out.contains(method), "{out}");
    }

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = client::request(info.kiosk, "GET", &format!("/api/orders/{id}"), &[], Vec::new())
            .await
            .unwrap();
        let v = r.json().unwrap();
        if v["status"] == "printed" {
            break;
        }
        assert!(Instant::now() < deadline, "order never printed: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let prints: Vec<_> = std::fs::read_dir(data.join("prints"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".png"))
        .collect();
    assert_eq!(prints.len(), 2, "{prints:?}");
    for name in prints {
        let img = image::open(data.join("prints").join(&name)).unwrap();
        assert!(img.width() > 0);
    }
    // The generated key is owner-only and never logged.
    let key = std::fs::read_to_string(data.join("payme.key")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("payme.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap();
    assert!(!log.contains(key.trim()), "the key reached the log");
}

#[test]
fn check_config_names_the_bad_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let text = photoboothd::config::DEFAULT_TOML.replace("max_copies = 10", "max_copies = 10\ncopies_max = 3");
    std::fs::write(&path, text).unwrap();
    // `check-config` names the key and the file; `run` refuses the same file before binding anything.
    for (command, err) in refused_by_both(&path) {
        assert!(
            err.contains("copies_max") && err.contains("bad.toml"),
            "{command}: {err}"
        );
    }

    let ok = Command::new(env!("CARGO_BIN_EXE_photoboothd"))
        .arg("check-config")
        .output()
        .unwrap();
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("configuration is valid"));
}

/// A typo on the line of a secret (the Payme key, the service PIN) is still refused with the line
/// and column, but the line's value is not echoed: stderr goes to journald, and the key is never
/// logged (docs/payme.md, "Transport").
#[test]
fn a_config_error_on_a_secret_line_does_not_print_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let bad = [
        "[payme]\nkey = \"Sup3rS3cretK\\qey\"\n",
        "[payme]\nkey = Sup3rS3cretKey\n",
        "[payme]\nkey = 31415926535\n",
        "payme.key = \"Sup3rS3cretK\\qey\"\n",
        "payme = { merchant_id = \"m\", key = 31415926535 }\n",
        "[service]\npin = 27182818\n",
    ];
    for text in bad {
        std::fs::write(&path, text).unwrap();
        for (command, err) in refused_by_both(&path) {
            assert!(err.contains("bad.toml") && err.contains("line"), "{command}: {err}");
            for secret in ["Sup3rS3cret", "31415926535", "27182818"] {
                assert!(!err.contains(secret), "{command} printed a secret: {err}");
            }
        }
    }
}

/// Runs `check-config` and `run` on the configuration at `path`; both must refuse it. Returns each
/// command with its standard error.
fn refused_by_both(path: &std::path::Path) -> Vec<(&'static str, String)> {
    ["check-config", "run"]
        .into_iter()
        .map(|command| {
            let out = Command::new(env!("CARGO_BIN_EXE_photoboothd"))
                .args([command, "--config"])
                .arg(path)
                .output()
                .unwrap();
            assert!(!out.status.success(), "{command} accepted {}", path.display());
            (command, String::from_utf8_lossy(&out.stderr).into_owned())
        })
        .collect()
}

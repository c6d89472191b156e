//! A real browser for the pages upcase makes (the admin status page, `bench --report`): Debian's
//! `chromium`, headless, in a fresh profile, with every connection of the browser's own turned
//! off (this machine reaches nothing but loopback).

use std::process::Command;
use std::time::Duration;

use super::{installed, run};

/// How long one page may take to load and settle in the browser.
const BROWSER_PATIENCE: Duration = Duration::from_secs(90);

/// Whether `chromium` is there; if not, the test skips (or, under `UPCASE_REQUIRE_TOOLS`, fails).
pub(crate) fn has_chromium() -> bool {
    installed("chromium")
}

/// The DOM of `url` (an `http://` page or a `file://` one) as the browser built it, after its
/// scripts have run for a few seconds of the page's own (virtual) time.
pub(crate) fn dump_dom(url: &str) -> String {
    let profile = std::env::temp_dir().join(format!(
        "upcase-chromium-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&profile);
    let mut browser = Command::new("chromium");
    browser.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        &format!("--user-data-dir={}", profile.display()),
        "--virtual-time-budget=3000",
        "--dump-dom",
        url,
    ]);
    let output = run("chromium --dump-dom", browser, b"", BROWSER_PATIENCE);
    let _ = std::fs::remove_dir_all(&profile);
    output.assert_success("chromium --dump-dom");
    output.text()
}

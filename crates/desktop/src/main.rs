//! `cargo run --release -p seqbridge-desktop [-- --smoke-test OUT.png [--smoke-audio FILE]]`

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use seqbridge_desktop::smoke::Smoke;
use seqbridge_desktop::{App, native_options};

fn main() -> Result<()> {
    // Mesa's device-select layer otherwise warns on every adapter enumeration without a
    // session bus (as the command line does).
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY: single-threaded here, before anything reads the environment.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
    let (mut shot, mut audio) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--smoke-test" => {
                shot = Some(PathBuf::from(args.next().context("--smoke-test OUT.png")?))
            }
            "--smoke-audio" => {
                audio = Some(PathBuf::from(args.next().context("--smoke-audio FILE")?))
            }
            other => bail!(
                "unknown argument {other:?} (known: --smoke-test OUT.png, --smoke-audio FILE)"
            ),
        }
    }
    let smoke = shot.map(|out| Smoke::new(out, audio));
    let outcome = smoke.as_ref().map(|s| s.outcome.clone());
    eframe::run_native(
        "seqbridge",
        native_options()?,
        Box::new(move |cc| {
            let app = App::new(cc)?;
            Ok(Box::new(match smoke {
                Some(s) => app.with_smoke(s),
                None => app,
            }))
        }),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(o) = outcome {
        match o.lock().ok().and_then(|mut o| o.take()) {
            Some(Ok(())) => println!("smoke test passed"),
            Some(Err(e)) => bail!("smoke test failed: {e}"),
            None => bail!("smoke test failed: the window closed before the run ended"),
        }
    }
    Ok(())
}

//! The configuration re-read on SIGHUP, on its own thread
//! (`condor_config_val` may take seconds: SIGHUPs for new credentials are
//! served meanwhile), and what a finished read changes.

use super::{Coordinator, backoff};
use crate::credmon::config::Config;
use std::sync::Arc;

/// Re-reads the configuration (SIGHUP); `None` keeps the current one.
type ReadConfig = Box<dyn FnMut() -> Option<Config> + Send>;

/// A read in progress: on its thread, or done already (inline).
pub(super) enum Running {
    Thread(std::thread::JoinHandle<(ReadConfig, Option<Config>)>),
    Done(ReadConfig, Box<Option<Config>>),
}

/// The configuration reader and its run on a background thread.
pub struct Reload {
    read: Option<ReadConfig>,
    pub(super) running: Option<Running>,
    pub(super) again: bool,
    inline: bool,
}

impl Reload {
    /// Wraps the function that re-reads the configuration (`None`: keep the current one).
    pub fn new(read: impl FnMut() -> Option<Config> + Send + 'static) -> Self {
        Reload {
            read: Some(Box::new(read)),
            running: None,
            again: false,
            inline: false,
        }
    }

    /// Like [`Reload::new`], but the read runs on the coordinator's own
    /// thread (the single-threaded simulation: no thread, no race).
    pub fn inline(read: impl FnMut() -> Option<Config> + Send + 'static) -> Self {
        Reload {
            inline: true,
            ..Reload::new(read)
        }
    }
}

impl Coordinator {
    /// Starts reading the configuration on a thread (or asks for another
    /// read when one is running).
    pub(super) fn start_reload(&mut self) {
        if self.reload.running.is_some() {
            self.reload.again = true;
            return;
        }
        let Some(mut read) = self.reload.read.take() else {
            return;
        };
        if self.reload.inline {
            let new = read();
            self.reload.running = Some(Running::Done(read, Box::new(new)));
            self.shared.reload_done();
            return;
        }
        let shared = self.shared.clone();
        let started = std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || {
                let new = read();
                shared.reload_done();
                (read, new)
            });
        match started {
            Ok(h) => self.reload.running = Some(Running::Thread(h)),
            Err(e) => log::error!("cannot start the configuration reader: {e}"),
        }
    }

    /// Applies a finished configuration read: every parked credential is
    /// queued again (a corrected configuration or `.top` heals without
    /// waiting), and on a change the new settings take effect and every
    /// credential backing off is retried at once. Returns whether the
    /// configuration changed.
    pub(super) fn reload_finished(&mut self) -> bool {
        let (read, new) = match self.reload.running.take() {
            None => return false,
            Some(Running::Done(read, new)) => (read, *new),
            Some(Running::Thread(h)) => match h.join() {
                Ok(done) => done,
                Err(_) => {
                    log::error!("the configuration reader failed");
                    return false;
                }
            },
        };
        self.reload.read = Some(read);
        let cfg = self.ctx.config();
        let mut changed = false;
        if let Some(new) = new {
            let new = Arc::new(new);
            changed = *new != *cfg;
            self.ctx.set_config(new.clone());
            if changed {
                log::info!("configuration changed; re-read on SIGHUP");
                self.shared
                    .lock()
                    .reconfigure(backoff(&new), new.max_in_flight);
                self.shared.notify_work();
                if self.spawned > 0 {
                    self.spawn_workers(new.max_in_flight);
                }
                // Settings that change which credentials are ours need a full look.
                self.scanner.forget_stamps();
            } else {
                log::debug!("configuration unchanged; re-read on SIGHUP");
            }
        }
        let now = self.now();
        let (woken, retried) = {
            let mut core = self.shared.lock();
            let woken = core.wake_parked(now);
            (woken, if changed { core.retry_now(now) } else { 0 })
        };
        if woken + retried > 0 {
            log::info!(
                "SIGHUP: looking again at {woken} skipped and {retried} failing credential(s)"
            );
            self.shared.notify_work();
        }
        if std::mem::take(&mut self.reload.again) {
            self.start_reload();
        }
        changed
    }
}

//! The worker threads: take the most pressing job from the [`Core`], fetch
//! its token, write it, record how it ran. Writes are committed in groups:
//! a worker stages its `.use` beside the old one and queues it; whichever
//! worker finds no commit running commits everything queued as one batch
//! ([`commit_batch`]: one `syncfs`, the renames, one `syncfs`; a batch of
//! one is `fsync`ed on its own), then records those jobs. A `.use` is
//! reported refreshed only once its rename is durable, and a crash leaves
//! each `.use` either as it was or complete.

use super::Shared;
use super::core::{Job, Woken, Worker};
use crate::credmon::refresh::{self, Ctx, Fetched, Ran, RefreshError, Write};
use crate::env::Mono;
use crate::files::{SafeDir, Staged, commit_batch};
use std::sync::{Arc, MutexGuard};

/// At most this many staged writes wait for one commit (each holds two
/// file descriptors).
pub const COMMIT_BATCH: usize = 64;

/// A staged write waiting for its commit.
pub struct Pending {
    job: Job,
    write: Box<Write>,
    staged: Staged,
    started: Mono,
}

/// Ends jobs whose fetch is over, all at once, as the workers would: the
/// tokens to write are staged and committed as one batch, then every job
/// is recorded. (`started`: when each job was taken.) The simulation calls
/// this to finish the jobs whose simulated requests end at the same instant.
pub fn complete(ctx: &Ctx, shared: &Shared, done: Vec<(Job, Fetched, Mono)>) {
    let mut batch = Vec::new();
    for (job, fetched, started) in done {
        match fetched {
            Fetched::Done(ran) => finish(ctx, shared, &job, &ran, started),
            Fetched::Write(write) => match write.stage(ctx) {
                Ok(staged) => batch.push(Pending {
                    job,
                    write,
                    staged,
                    started,
                }),
                Err(e) => {
                    let ran = write.finish(ctx, Err(e));
                    finish(ctx, shared, &job, &ran, started);
                }
            },
        }
    }
    if !batch.is_empty() {
        commit_now(ctx, shared, batch);
    }
}

/// Writes waiting for a commit, and whether one is running.
#[derive(Default)]
pub struct Commits {
    pending: Vec<Pending>,
    running: bool,
}

/// The loop of one worker thread; returns when the daemon stops.
pub fn worker(worker: Worker, ctx: Arc<Ctx>, shared: Arc<Shared>) {
    while let Some(job) = shared.next_job(worker) {
        run(&ctx, &shared, job);
    }
}

/// Runs one job to its end: fetch, then write (grouped) or record at once.
pub fn run(ctx: &Ctx, shared: &Shared, job: Job) {
    let started = shared.clock.mono();
    let may_ask = |server: &str| {
        let now = shared.clock.mono();
        shared.lock().may_ask(server, &job, now)
    };
    match refresh::fetch(ctx, &job.key, &job.task, &may_ask) {
        Fetched::Done(ran) => finish(ctx, shared, &job, &ran, started),
        Fetched::Write(write) => match write.stage(ctx) {
            Ok(staged) => commit(
                ctx,
                shared,
                Pending {
                    job,
                    write,
                    staged,
                    started,
                },
            ),
            Err(e) => {
                let ran = write.finish(ctx, Err(e));
                finish(ctx, shared, &job, &ran, started);
            }
        },
    }
}

/// Records a job's end (after removing a dead credential's files), and its
/// problem, if any, for the state file (a new or changed one wakes the
/// coordinator to write it).
fn finish(ctx: &Ctx, shared: &Shared, job: &Job, ran: &Ran, started: Mono) {
    if let Err(RefreshError::Remove { .. }) = &ran.outcome {
        refresh::remove_credential(ctx, &job.key);
    }
    let (now, wall) = (shared.clock.mono(), shared.clock.now());
    let (woken, next_try) = shared.record_quietly(job, ran, now.since(started));
    let next_try = next_try.map(|t| crate::token::unix_seconds(wall + t.since(now)));
    let wall = crate::token::unix_seconds(wall);
    // The tracker first: a pass this job ends must see its problem.
    let changed = ctx.status().record(&job.key, &ran.outcome, wall, next_try);
    shared.wake(Woken {
        coordinator: woken.coordinator || changed,
        ..woken
    });
}

/// Queues a staged write; commits the queue unless another worker is at it.
fn commit(ctx: &Ctx, shared: &Shared, pending: Pending) {
    {
        let mut q = shared.commits();
        while q.pending.len() >= COMMIT_BATCH && q.running {
            q = shared.wait_commit(q);
        }
        q.pending.push(pending);
        if q.running {
            return;
        }
        q.running = true;
    }
    loop {
        let batch = {
            let mut q = shared.commits();
            if q.pending.is_empty() {
                q.running = false;
                drop(q);
                shared.commit_done();
                return;
            }
            let n = q.pending.len().min(COMMIT_BATCH);
            let batch: Vec<Pending> = q.pending.drain(..n).collect();
            drop(q);
            shared.commit_done();
            batch
        };
        commit_now(ctx, shared, batch);
    }
}

/// A write of a batch, its job and when that started.
type Writing = (Box<Write>, Job, Mono);

/// Commits one batch and records its jobs.
pub(super) fn commit_now(ctx: &Ctx, shared: &Shared, batch: Vec<Pending>) {
    let (jobs, staged): (Vec<Writing>, Vec<Staged>) = batch
        .into_iter()
        .map(|p| ((p.write, p.job, p.started), p.staged))
        .unzip();
    let written = match SafeDir::open(&ctx.config().cred_dir) {
        Ok(root) => {
            let items = jobs.iter().map(|(w, _, _)| &w.udir).zip(staged).collect();
            commit_batch(&root, items)
        }
        Err(e) => {
            log::error!("{e}");
            jobs.iter()
                .zip(staged)
                .map(|((w, _, _), st)| {
                    w.udir.discard(st);
                    Err(crate::files::FileError::io(
                        "cannot open",
                        &ctx.config().cred_dir,
                        std::io::Error::other(e.to_string()),
                    ))
                })
                .collect()
        }
    };
    for ((write, job, started), written) in jobs.into_iter().zip(written) {
        let ran = write.finish(ctx, written);
        finish(ctx, shared, &job, &ran, started);
    }
}

impl Shared {
    fn commits(&self) -> MutexGuard<'_, Commits> {
        self.commits.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait_commit<'a>(&self, q: MutexGuard<'a, Commits>) -> MutexGuard<'a, Commits> {
        self.committed.wait(q).unwrap_or_else(|p| p.into_inner())
    }

    fn commit_done(&self) {
        self.committed.notify_all();
    }
}

//! The fan-out: every due delivery of the spool, attempted by one bounded pool of threads for
//! the whole hub (`HUB_WORKERS`), each receiver's call on its own thread, so that a slow or
//! dead receiver delays no other. A delivery is claimed (a rename: one process has it),
//! attempted, and settled: `done/` (kept as a receipt), back to `new/` with its next try, or
//! `dead/`. One log line per attempt.
//!
//! Two ways to run it, one code: [`drain`] (one pass over what is due, for cron or a timer;
//! any number at once), and [`serve`] (the delivery process: it waits for work, woken by the
//! sender's request through a datagram socket in the spool, or by the next retry's time).

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread::{self, Scope};
use std::time::{Duration, Instant};

use super::event::Delivery;
use super::forms;
use crate::cgi::Env;
use crate::config::{Hub, HubReceiver};
use crate::log::LogLine;
use crate::relay::journal::Journal;
use crate::relay::signal::{Verdict, backoff, excerpt, jittered};
use crate::relay::transport::{Call, Transport};
use crate::spool::Spool;
use crate::time::{Clock, unix_secs};

/// The longest wait between retries (seconds), whatever `HUB_RETRY_SECS` doubles to.
const MAX_BACKOFF: u64 = 300;
/// A worker's stack: a call through ureq and rustls needs far less; untouched pages cost
/// nothing, so a pool of hundreds stays small.
const WORKER_STACK: usize = 512 * 1024;
/// How often the delivery process looks at the spool without being woken (records another
/// process put back, a wake-up that was lost).
const RESCAN: Duration = Duration::from_secs(2);
/// How often it takes back dead drainers' claims and prunes old receipts.
const HOUSEKEEPING: Duration = Duration::from_secs(30);

/// Everything a delivery needs besides the record: the hub's configuration (receivers, by
/// name: where a record goes and with which token is the deliverer's configuration, never the
/// record's), the spool, the HTTP client, the tokens' environment, the clock, the log.
pub struct Courier<'a> {
    pub hub: &'a Hub,
    pub spool: &'a Spool,
    pub transport: &'a dyn Transport,
    pub env: &'a Env,
    pub clock: &'a (dyn Clock + Sync),
    pub journal: &'a Journal,
    /// Lines an operator must see at once (a receiver refusing the hub's token), besides the
    /// log: the delivery process's stderr.
    pub alert: &'a (dyn Fn(&str) + Sync),
}

/// What became of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Back in `new/`, due at this time.
    Retry(u64),
    Dead,
    /// Another process claimed it first.
    Busy,
}

/// What a pass or a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub delivered: usize,
    pub retried: usize,
    pub dead: usize,
    pub not_due: usize,
    pub busy: usize,
    pub reclaimed: usize,
    pub errors: usize,
}

impl Counts {
    fn count(&mut self, outcome: &io::Result<Outcome>) {
        match outcome {
            Ok(Outcome::Delivered) => self.delivered += 1,
            Ok(Outcome::Retry(_)) => self.retried += 1,
            Ok(Outcome::Dead) => self.dead += 1,
            Ok(Outcome::Busy) => self.busy += 1,
            Err(_) => self.errors += 1,
        }
    }
}

/// One attempt's result, before it is settled.
struct Attempt {
    verdict: Verdict,
    status: Option<u16>,
    /// At most 400 bytes of a failed answer, token removed.
    detail: String,
}

impl Courier<'_> {
    /// How long a claim may be held before another process takes it back: a call cannot
    /// outlive its timeout.
    pub fn stale_after(&self) -> Duration {
        Duration::from_secs(self.hub.timeout_secs.saturating_mul(2).saturating_add(60))
    }

    /// Claims the delivery `id`, attempts it, settles it, logs the attempt.
    pub fn deliver(&self, id: &str) -> io::Result<Outcome> {
        let Some(claim) = self.spool.claim::<Delivery>(id, self.clock.now())? else {
            return Ok(Outcome::Busy);
        };
        let mut d = claim.record.clone();
        let now = unix_secs(self.clock.now());
        let receiver = self.hub.receivers.iter().find(|r| r.name == d.receiver);
        let mut attempt = match receiver {
            None => Attempt {
                verdict: Verdict::Dead(format!(
                    "{} is not a receiver of this configuration",
                    d.receiver
                )),
                status: None,
                detail: String::new(),
            },
            Some(_) if d.attempts > 0 && d.expired(now, self.hub.max_age_secs) => Attempt {
                verdict: Verdict::Dead(format!(
                    "older than {} s after {} attempts",
                    self.hub.max_age_secs, d.attempts
                )),
                status: None,
                detail: String::new(),
            },
            Some(receiver) => self.attempt(receiver, &mut d),
        };
        let now = unix_secs(self.clock.now());
        if let Verdict::Retry(why) = &attempt.verdict
            && d.expired(now, self.hub.max_age_secs)
        {
            let why = format!("older than {} s; last: {why}", self.hub.max_age_secs);
            attempt.verdict = Verdict::Dead(why);
        }
        d.status = attempt.status.or(d.status);
        let outcome = match &attempt.verdict {
            Verdict::Delivered => {
                d.delivered = Some(now);
                d.last = None;
                self.spool.keep(claim, &d)?;
                Outcome::Delivered
            }
            Verdict::Retry(why) => {
                let wait = backoff(self.hub.retry_secs, MAX_BACKOFF, d.attempts);
                d.next_attempt = now + jittered(wait, random());
                d.last = Some(why.clone());
                self.spool.retry(claim, &d)?;
                Outcome::Retry(d.next_attempt)
            }
            Verdict::Dead(why) => {
                d.last = Some(why.clone());
                self.spool.bury_as(claim, &d, why)?;
                Outcome::Dead
            }
        };
        let line = self.line(now, &d, &attempt);
        self.journal.append(&line);
        if forms::loud(attempt.status) {
            (self.alert)(&line);
        }
        Ok(outcome)
    }

    /// One call to `receiver` (its form, its token), judged.
    fn attempt(&self, receiver: &HubReceiver, d: &mut Delivery) -> Attempt {
        d.attempts += 1;
        let token = match &receiver.token_env {
            None => None,
            Some(name) => match self.env.soft(name).filter(|t| !t.is_empty()) {
                Some(token) => Some(token),
                None => {
                    return Attempt {
                        verdict: Verdict::Retry(format!("no token in ${name}")),
                        status: None,
                        detail: String::new(),
                    };
                }
            },
        };
        let request = forms::request(receiver, d);
        let call = Call {
            method: request.method,
            url: &request.url,
            token,
            json: request.json.as_deref(),
            timeout: Duration::from_secs(self.hub.timeout_secs),
        };
        match self.transport.send(&call) {
            Err(e) => Attempt {
                verdict: Verdict::Retry(excerpt(e.as_bytes(), token)),
                status: None,
                detail: String::new(),
            },
            Ok(reply) => {
                let verdict = forms::judge(reply.status);
                let detail = match verdict {
                    Verdict::Delivered => String::new(),
                    _ => excerpt(&reply.body, token),
                };
                Attempt { verdict, status: Some(reply.status), detail }
            }
        }
    }

    /// `TIME dacs_logout_hub: event=… receiver=… user=… outcome=… status=… attempt=…
    /// [why=…] [body=…] [alert=token-refused]`
    fn line(&self, now: u64, d: &Delivery, attempt: &Attempt) -> String {
        let mut line = LogLine::default();
        line.set("event", &d.event_id)
            .set("receiver", &d.receiver)
            .set("user", &d.user_name)
            .set("outcome", attempt.verdict.outcome())
            .set("status", attempt.status.map_or("-".to_owned(), |s| s.to_string()))
            .set("attempt", d.attempts)
            .maybe("why", attempt.verdict.reason())
            .maybe("body", Some(&attempt.detail).filter(|d| !d.is_empty()))
            .maybe("alert", forms::loud(attempt.status).then_some("token-refused"));
        line.render_as(now, "dacs_logout_hub")
    }

    /// Takes back the claims of processes that died, and prunes receipts kept long enough.
    fn housekeeping(&self) -> io::Result<usize> {
        let now = self.clock.now();
        let reclaimed = self.spool.reclaim_stale(self.stale_after(), now)?;
        self.spool.prune_done(Duration::from_secs(self.hub.receipt_secs), now)?;
        Ok(reclaimed)
    }
}

/// Eight random bytes, for a retry's jitter (the time's nanoseconds if the kernel has none).
fn random() -> u64 {
    let mut bytes = [0u8; 8];
    match rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty()) {
        Ok(8) => u64::from_le_bytes(bytes),
        _ => u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos()),
        ),
    }
}

enum Event {
    Done(String, io::Result<Outcome>),
    Wake,
}

/// The pool: up to `limit` worker threads, started as work arrives (a hub with little to do
/// keeps few), each taking one delivery at a time.
struct Pool<'scope, 'env> {
    scope: &'scope Scope<'scope, 'env>,
    courier: &'env Courier<'env>,
    jobs: Option<mpsc::Sender<String>>,
    queue: &'env Mutex<mpsc::Receiver<String>>,
    done: mpsc::Sender<Event>,
    events: mpsc::Receiver<Event>,
    in_flight: HashSet<String>,
    spawned: usize,
    limit: usize,
    counts: Counts,
}

impl<'scope, 'env> Pool<'scope, 'env> {
    fn dispatch(&mut self, id: String) {
        if !self.in_flight.insert(id.clone()) {
            return;
        }
        if self.in_flight.len() > self.spawned && self.spawned < self.limit {
            self.spawn();
        }
        if self.spawned == 0 {
            // Not one thread could start: this one delivers.
            let outcome = self.courier.deliver(&id);
            let _ = self.done.send(Event::Done(id, outcome));
        } else if let Some(jobs) = &self.jobs {
            let _ = jobs.send(id);
        }
    }

    fn spawn(&mut self) {
        let (courier, queue, done) = (self.courier, self.queue, self.done.clone());
        let worker = thread::Builder::new().name("delivery".into()).stack_size(WORKER_STACK);
        let started = worker.spawn_scoped(self.scope, move || {
            loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                let Ok(id) = next else { return };
                let outcome = courier.deliver(&id);
                if done.send(Event::Done(id, outcome)).is_err() {
                    return;
                }
            }
        });
        // A thread that cannot start leaves the work to the others.
        if started.is_ok() {
            self.spawned += 1;
        }
    }

    /// Settles an event: a finished delivery leaves the in-flight set. The next try of a
    /// retried one.
    fn settle(&mut self, event: Event) -> Option<u64> {
        match event {
            Event::Done(id, outcome) => {
                self.in_flight.remove(&id);
                self.counts.count(&outcome);
                match outcome {
                    Ok(Outcome::Retry(at)) => Some(at),
                    _ => None,
                }
            }
            Event::Wake => None,
        }
    }

    /// Waits until nothing is in flight.
    fn finish(&mut self) {
        while !self.in_flight.is_empty() {
            match self.events.recv() {
                Ok(event) => {
                    self.settle(event);
                }
                Err(_) => break,
            }
        }
    }
}

/// Runs `body` with a pool of the hub's workers; the workers end with it. With a `wake`
/// socket, a thread turns its datagrams into wake-ups.
fn with_pool<T>(
    courier: &Courier,
    wake: Option<&UnixDatagram>,
    body: impl FnOnce(&mut Pool) -> T,
) -> T {
    let (jobs, queue) = mpsc::channel::<String>();
    let queue = Mutex::new(queue);
    let (done, events) = mpsc::channel::<Event>();
    let stopping = AtomicBool::new(false);
    thread::scope(|scope| {
        if let Some(socket) = wake {
            let (done, stopping) = (done.clone(), &stopping);
            let _ = socket.set_read_timeout(Some(Duration::from_millis(200)));
            let listener = thread::Builder::new().name("wake".into()).stack_size(64 * 1024);
            let _ = listener.spawn_scoped(scope, move || {
                let mut buffer = [0u8; 16];
                while !stopping.load(Ordering::Relaxed) {
                    if socket.recv(&mut buffer).is_ok() && done.send(Event::Wake).is_err() {
                        return;
                    }
                }
            });
        }
        let mut pool = Pool {
            scope,
            courier,
            jobs: Some(jobs),
            queue: &queue,
            done,
            events,
            in_flight: HashSet::new(),
            spawned: 0,
            limit: courier.hub.workers.max(1),
            counts: Counts::default(),
        };
        let result = body(&mut pool);
        pool.finish();
        pool.jobs = None; // the workers' queue closes: they return
        stopping.store(true, Ordering::Relaxed);
        result
    })
}

/// `dacs_logout_hub drain`: one pass. Takes back dead processes' claims, attempts every
/// delivery that is due (everything with `force`) in parallel, waits for them, prunes old
/// receipts. Safe to run many at once, and beside the delivery process: each delivery is
/// claimed by exactly one.
pub fn drain(courier: &Courier, force: bool) -> io::Result<Counts> {
    let reclaimed = courier.housekeeping()?;
    let now = unix_secs(courier.clock.now());
    let mut counts = with_pool(courier, None, |pool| -> io::Result<Counts> {
        for id in courier.spool.waiting()? {
            let due =
                force || courier.spool.peek::<Delivery>(&id).is_none_or(|d| d.next_attempt <= now);
            if due {
                pool.dispatch(id);
            } else {
                pool.counts.not_due += 1;
            }
        }
        pool.finish();
        Ok(pool.counts)
    })?;
    counts.reclaimed = reclaimed;
    Ok(counts)
}

/// How the delivery process runs.
pub struct Run<'a> {
    /// Wake-ups from senders' requests.
    pub wake: Option<&'a UnixDatagram>,
    /// Return once nothing is under way and nothing is due within this long (the detached
    /// process a request starts); `None`: until `stop`.
    pub linger: Option<Duration>,
    pub stop: &'a AtomicBool,
}

/// The delivery process: attempts each delivery when it is due, for as long as `run` says.
pub fn serve(courier: &Courier, run: &Run) -> io::Result<Counts> {
    with_pool(courier, run.wake, |pool| {
        let result = dispatch_loop(courier, run, pool);
        pool.finish();
        result.map(|()| pool.counts)
    })
}

fn dispatch_loop(courier: &Courier, run: &Run, pool: &mut Pool) -> io::Result<()> {
    // Each waiting delivery's next try, as last read (a delivery is read once per state).
    let mut due_at: HashMap<String, u64> = HashMap::new();
    let mut housekeeping = Instant::now();
    pool.counts.reclaimed += courier.housekeeping()?;
    let mut scan = true;
    let mut soonest: Option<u64> = None;
    loop {
        if run.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if housekeeping.elapsed() >= HOUSEKEEPING {
            housekeeping = Instant::now();
            pool.counts.reclaimed += courier.housekeeping()?;
            scan = true;
        }
        let now = unix_secs(courier.clock.now());
        if scan || soonest.is_some_and(|t| t <= now) {
            soonest = None;
            let waiting = courier.spool.waiting()?;
            let present: HashSet<&String> = waiting.iter().collect();
            due_at.retain(|id, _| present.contains(id));
            for id in &waiting {
                if pool.in_flight.contains(id) {
                    continue;
                }
                let at = *due_at.entry(id.clone()).or_insert_with(|| {
                    courier.spool.peek::<Delivery>(id).map_or(0, |d| d.next_attempt)
                });
                if at <= now {
                    due_at.remove(id);
                    pool.dispatch(id.clone());
                } else {
                    soonest = Some(soonest.map_or(at, |s| s.min(at)));
                }
            }
        }
        if let Some(linger) = run.linger
            && pool.in_flight.is_empty()
            && soonest.is_none_or(|t| t > now + linger.as_secs())
        {
            return Ok(());
        }
        let until_due = soonest.map(|t| Duration::from_secs(t.saturating_sub(now)));
        let wait = until_due.map_or(RESCAN, |d| d.min(RESCAN)).max(Duration::from_millis(10));
        match pool.events.recv_timeout(wait) {
            Ok(Event::Wake) => scan = true,
            Ok(event) => {
                if let Some(at) = pool.settle(event) {
                    soonest = Some(soonest.map_or(at, |s| s.min(at)));
                }
                scan = pool.in_flight.is_empty();
            }
            Err(mpsc::RecvTimeoutError::Timeout) => scan = true,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

/// The file name of the delivery process's wake-up socket, in the spool.
pub const WAKE_SOCKET: &str = "wake.sock";
/// The lock the delivery process holds for its whole life: one per spool.
pub const LOCK: &str = "deliver.lock";

/// Tells the delivery process of `spool_dir` that there is work: `true` when one is there to
/// hear it (its socket took the datagram, or its queue is full).
pub fn wake(spool_dir: &std::path::Path) -> bool {
    let Ok(socket) = UnixDatagram::unbound() else { return false };
    let _ = socket.set_nonblocking(true);
    match socket.send_to(b"w", spool_dir.join(WAKE_SOCKET)) {
        Ok(_) => true,
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    }
}

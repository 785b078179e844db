//! /proc parsing: thread and process CPU time, peak RSS, and the watch on other processes
//! that says whether the machine was quiet during a figure.

use std::collections::HashMap;
use std::path::Path;

use crate::report::*;

/// CPU time of the calling thread, in ns (first field of /proc/thread-self/schedstat).
pub(crate) fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

/// Sum of CPU ns of the live threads of `proc_dir` (e.g. /proc/self or /proc/1234) for which
/// `keep(thread name, is the main thread)` holds.
pub(crate) fn tasks_cpu_ns(proc_dir: &Path, keep: impl Fn(&str, bool) -> bool) -> u64 {
    let Ok(rd) = std::fs::read_dir(proc_dir.join("task")) else { return 0 };
    let main_tid = std::fs::read_to_string(proc_dir.join("stat"))
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default();
    let mut sum = 0;
    for t in rd.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !keep(comm.trim(), t.file_name().to_string_lossy() == main_tid) {
            continue;
        }
        if let Some(ns) = std::fs::read_to_string(t.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        {
            sum += ns;
        }
    }
    sum
}

/// Threads of the load generator (the client runtime, its blocking pool included).
pub(crate) fn is_client_thread(name: &str, _main: bool) -> bool {
    name.starts_with("figures-cli")
}

/// Threads of the in-process server: its runtime and whatever threads the store runs (e.g. the
/// SQLite writer): everything but the load generator and the idle main thread.
pub(crate) fn is_server_thread(name: &str, main: bool) -> bool {
    !main && !is_client_thread(name, main)
}

pub(crate) fn any_thread(_: &str, _: bool) -> bool {
    true
}

/// A `VmXxx:` line of /proc/<pid>/status, in kB.
pub(crate) fn status_kb(proc_dir: &Path, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(proc_dir.join("status")).ok()?;
    s.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

/// Jiffies of the whole machine, from the `cpu` line of /proc/stat.
#[derive(Clone, Copy, Default)]
pub(crate) struct MachineTicks {
    /// user + nice + system + steal (guest time is already in user)
    pub(crate) busy: u64,
    /// irq + softirq: mostly our own loopback traffic, charged to no process
    pub(crate) irq: u64,
    pub(crate) total: u64,
}

pub(crate) fn machine_ticks() -> MachineTicks {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> =
        s.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(7);
    let irq = get(5) + get(6);
    MachineTicks { busy, irq, total: busy + irq + get(3) + get(4) }
}

/// (pid, ppid, comm, utime + stime) of one /proc/<pid>/stat.
pub(crate) fn proc_stat(path: &Path) -> Option<(u32, u32, String, u64)> {
    let s = std::fs::read_to_string(path).ok()?;
    let (head, rest) = s.rsplit_once(')')?;
    let (pid, comm) = head.split_once(" (")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17)
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((pid.trim().parse().ok()?, f.get(1)?.parse().ok()?, comm.to_string(), ticks))
}

/// Jiffies used by this process, its threads and its waited-for children (export children, the server binary).
pub(crate) fn own_ticks() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |(_, r)| r);
    // After the comm: state(3) ... utime(14) stime(15) cutime(16) cstime(17), i.e. indexes 11..=14 here.
    after.split_whitespace().skip(11).take(4).filter_map(|x| x.parse::<u64>().ok()).sum()
}

/// CPU jiffies of every other live process: pid -> (comm, ticks, kernel thread?). Our own
/// children (the server binary, export children) are left out: they are counted as ours.
pub(crate) fn other_procs() -> HashMap<u32, (String, u64, bool)> {
    let me = std::process::id();
    let mut out = HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Some((pid, ppid, comm, ticks)) = proc_stat(&e.path().join("stat"))
            && pid != me
            && ppid != me
        {
            out.insert(pid, (comm, ticks, pid == 2 || ppid == 2));
        }
    }
    out
}

/// Watches how busy the machine was during a figure, and how much of that was someone else.
pub(crate) struct LoadWatch {
    pub(crate) machine: MachineTicks,
    pub(crate) own: u64,
    pub(crate) others: HashMap<u32, (String, u64, bool)>,
}

impl LoadWatch {
    pub(crate) fn start() -> LoadWatch {
        LoadWatch { machine: machine_ticks(), own: own_ticks(), others: other_procs() }
    }
    /// Share of all CPUs used by other work (not this bench, not kernel threads or interrupts,
    /// which mostly serve our own I/O), printed; returned for the summary.
    pub(crate) fn finish(self, what: &str) -> f64 {
        let m = machine_ticks();
        let total = m.total.saturating_sub(self.machine.total).max(1) as f64;
        let busy = m.busy.saturating_sub(self.machine.busy) as f64;
        let irq = m.irq.saturating_sub(self.machine.irq) as f64;
        let own = own_ticks().saturating_sub(self.own) as f64;
        let mut kernel = 0.0;
        let mut named: Vec<(String, f64)> = Vec::new();
        for (pid, (comm, ticks, kthread)) in other_procs() {
            let d = ticks.saturating_sub(self.others.get(&pid).map_or(0, |o| o.1)) as f64;
            if kthread {
                kernel += d;
            } else if d > 0.0 {
                named.push((comm, d));
            }
        }
        named.sort_by(|a, b| b.1.total_cmp(&a.1));
        // Whatever is neither ours nor a kernel thread: other processes, live or finished meanwhile.
        let other = ((busy - own - kernel) / total).max(0.0);
        let top: Vec<String> = named.iter().take(3).map(|(c, d)| format!("{c} {:.0}%", d / total * 100.0)).collect();
        info(format!(
            "machine during {what}: {:.0}% of all CPUs busy; this bench {:.0}%, kernel threads {:.0}%, interrupts {:.0}%, other processes {:.0}%{}{}",
            (busy + irq) / total * 100.0,
            own / total * 100.0,
            kernel / total * 100.0,
            irq / total * 100.0,
            other * 100.0,
            if top.is_empty() { String::new() } else { format!(" (top: {})", top.join(", ")) },
            if other > 0.10 { "  <-- WARNING: the machine was not quiet; figures are pessimistic" } else { "" }
        ));
        other
    }
}

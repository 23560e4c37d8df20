//! The few `/proc` figures the bench needs (Linux only; no libc).

/// User + system CPU time of a process (all its threads, also those that ended), in clock
/// ticks: fields 14 and 15 of `/proc/<pid>/stat` (`pid` "self" for this process). Convert
/// with `getconf CLK_TCK` (100 on every common Linux platform): the resolution is 10 ms.
pub fn cpu_ticks(pid: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    // The command name (field 2) is in parentheses and may contain spaces: count fields
    // after its closing parenthesis, where field 3 (state) is the first.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or(format!("unexpected {path}"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| -> Result<u64, String> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or(format!("no field {n} in {path}"))
    };
    Ok(field(14)? + field(15)?)
}

/// A memory figure of `/proc/self/status` in KiB: `VmHWM` (peak resident set size) or
/// `VmRSS` (resident set size now).
pub fn memory_kb(field: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/self/status"))
}

/// Whether process `pid` runs (or is stopped): it exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the command name in parentheses.
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// What this process's threads have used so far, summed over the threads alive now (the
/// idle scenario's figures; its threads live through it): nanoseconds on a CPU (the first
/// field of `/proc/self/task/<tid>/schedstat`, exact where clock ticks are 10 ms coarse)
/// and context switches, voluntary and not (`/proc/self/task/<tid>/status`): how often a
/// thread stopped running, so about how often it woke up.
pub fn threads_cpu_ns_and_switches() -> Result<(u64, u64), String> {
    let tasks =
        std::fs::read_dir("/proc/self/task").map_err(|e| format!("/proc/self/task: {e}"))?;
    let (mut cpu_ns, mut switches) = (0, 0);
    for task in tasks.flatten() {
        let dir = task.path();
        // A thread that ended since the listing has no files any more: it counts as gone.
        let Ok(schedstat) = std::fs::read_to_string(dir.join("schedstat")) else {
            continue;
        };
        cpu_ns += schedstat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or(0);
        let Ok(status) = std::fs::read_to_string(dir.join("status")) else {
            continue;
        };
        switches += status
            .lines()
            .filter_map(|l| {
                l.strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
            })
            .filter_map(|v| v.trim().parse::<u64>().ok())
            .sum::<u64>();
    }
    Ok((cpu_ns, switches))
}

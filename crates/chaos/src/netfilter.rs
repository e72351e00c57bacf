//! Partitions with iptables rules on the proxies' ports.
//!
//! Every peer link `from -> to` is a proxy listening on its own loopback
//! port ([`crate::proxy`]), so "`from` cannot reach `to`" is one rule in
//! the OUTPUT chain dropping TCP packets to that port: the connection
//! `from` opens (or holds) to `to` goes silent, exactly as on a cut
//! network. Requests from `to` to `from` use the other link, so blocking
//! one direction gives a one-way partition at the level of RPCs.
//!
//! Every rule carries the comment `distcache-chaos:<harness pid>`. A
//! harness removes its own rules when a partition ends and when it stops,
//! and at start removes the rules of harnesses that are no longer running
//! (one that crashed), never another live harness's.
//!
//! Needs root and `iptables` (scripts/setup.sh installs it); without them
//! [`Netfilter::probe`] says why and the run keeps to the other faults.

use std::collections::BTreeSet;
use std::process::Command;

/// The comment prefix of every rule.
pub const COMMENT_PREFIX: &str = "distcache-chaos:";
/// Most rules one harness holds at once.
pub const RULES_MAX: usize = 1024;

/// Firewall access, when available.
pub struct Netfilter {
    comment: String,
    /// The proxy ports blocked now.
    blocked: BTreeSet<u16>,
}

fn iptables(args: &[&str]) -> Result<String, String> {
    let output = Command::new("iptables")
        .arg("-w")
        .args(args)
        .output()
        .map_err(|error| format!("cannot run iptables: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "iptables {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

impl Netfilter {
    /// Firewall access, or why not (not root, no iptables, iptables fails).
    /// Removes the stale rules of dead harnesses first.
    pub fn probe() -> Result<Netfilter, String> {
        if !is_root() {
            return Err("not running as root".into());
        }
        iptables(&["-S", "OUTPUT"])?;
        remove_stale_rules();
        Ok(Netfilter {
            comment: format!("{COMMENT_PREFIX}{}", std::process::id()),
            blocked: BTreeSet::new(),
        })
    }

    fn rule<'a>(&'a self, port: &'a str) -> [&'a str; 13] {
        [
            "OUTPUT",
            "-p",
            "tcp",
            "-d",
            "127.0.0.1",
            "--dport",
            port,
            "-m",
            "comment",
            "--comment",
            &self.comment,
            "-j",
            "DROP",
        ]
    }

    /// Drops the traffic to each proxy port in `ports`.
    pub fn block(&mut self, ports: &[u16]) -> Result<(), String> {
        for &port in ports {
            if self.blocked.contains(&port) {
                continue;
            }
            if self.blocked.len() >= RULES_MAX {
                return Err(format!("more than {RULES_MAX} rules"));
            }
            let port_text = port.to_string();
            let mut args = vec!["-I"];
            args.extend(self.rule(&port_text));
            iptables(&args)?;
            self.blocked.insert(port);
        }
        Ok(())
    }

    /// Removes every rule of this harness.
    pub fn heal(&mut self) -> Result<(), String> {
        let mut first_error = None;
        for port in std::mem::take(&mut self.blocked) {
            let port_text = port.to_string();
            let mut args = vec!["-D"];
            args.extend(self.rule(&port_text));
            if let Err(error) = iptables(&args) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    pub fn blocked_count(&self) -> usize {
        self.blocked.len()
    }
}

impl Drop for Netfilter {
    fn drop(&mut self) {
        if let Err(error) = self.heal() {
            eprintln!("chaos: removing firewall rules: {error}");
        }
    }
}

/// Deletes the rules whose comment names a harness pid that is not
/// running.
pub fn remove_stale_rules() {
    let Ok(rules) = iptables(&["-S", "OUTPUT"]) else {
        return;
    };
    for line in rules.lines() {
        let Some(at) = line.find(COMMENT_PREFIX) else {
            continue;
        };
        let pid: String = line[at + COMMENT_PREFIX.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if pid.is_empty() || std::path::Path::new("/proc").join(&pid).exists() {
            continue;
        }
        let Some(spec) = line.strip_prefix("-A ") else {
            continue;
        };
        // `iptables -S` prints the rule as it was added; `-D` takes the
        // same words. The comment has no spaces, so splitting is safe.
        let mut args = vec!["-D"];
        args.extend(spec.split_whitespace().map(|word| word.trim_matches('"')));
        match iptables(&args) {
            Ok(_) => eprintln!("chaos: removed a stale rule of dead harness {pid}: {line}"),
            Err(error) => eprintln!("chaos: cannot remove a stale rule ({line}): {error}"),
        }
    }
}

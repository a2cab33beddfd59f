//! The text form of the lcore table: one line per lcore with its role, CPU set and socket.

use std::fmt::Write;

use dpmem::eal::lcore::LcoreInfo;
use dpmem::eal::Socket;

/// `0-2,5` for {0, 1, 2, 5}.
fn cpu_list(cpus: &std::collections::BTreeSet<u32>) -> String {
    let mut out = String::new();
    let mut ids = cpus.iter().copied().peekable();
    while let Some(first) = ids.next() {
        let mut last = first;
        while ids.peek() == Some(&(last + 1)) {
            last = ids.next().unwrap_or(last);
        }
        if !out.is_empty() {
            out.push(',');
        }
        // `write!` into a String cannot fail.
        let _ = if first == last {
            write!(out, "{first}")
        } else {
            write!(out, "{first}-{last}")
        };
    }
    out
}

pub fn render(lcores: &[LcoreInfo]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "lcores:");
    let _ = writeln!(
        out,
        "  {:>5}  {:<7}  {:<12}  socket",
        "lcore", "role", "cpus"
    );
    for info in lcores {
        let socket = match info.socket {
            Socket::Any => "any".to_owned(),
            other => other.to_raw().to_string(),
        };
        let _ = writeln!(
            out,
            "  {:>5}  {:<7}  {:<12}  {socket}",
            info.lcore_id,
            info.role.as_str(),
            cpu_list(&info.cpus)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpmem::eal::lcore::LcoreRole;

    #[test]
    fn lines_show_role_cpu_ranges_and_any_socket() {
        let table = vec![
            LcoreInfo {
                lcore_id: 0,
                role: LcoreRole::Main,
                cpus: [0, 6].into(),
                socket: Socket::Any,
                cpu_id: 0,
            },
            LcoreInfo {
                lcore_id: 2,
                role: LcoreRole::Worker,
                cpus: [5, 6, 7, 9].into(),
                socket: Socket::Node(1),
                cpu_id: 5,
            },
        ];
        let text = render(&table);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["0", "main", "0,6", "any"]
        );
        assert_eq!(
            lines[3].split_whitespace().collect::<Vec<_>>(),
            ["2", "worker", "5-7,9", "1"]
        );
    }
}

//! Plain HTTP/1.1 reads of a service's operations port (`/metrics`, `/ready`) and the
//! values in a Prometheus exposition.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// An address on 127.0.0.1 with a port that was free a moment ago, for a child
/// process's `--metrics-addr` (in process, bind port 0 instead: this one can be taken
/// in between).
pub fn free_local_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    format!("127.0.0.1:{}", listener.local_addr().expect("bound").port())
}

/// `GET path` from `addr` (an IP address and port, such as `127.0.0.1:9466`): the
/// status and the body, or `None` if the
/// service does not answer within 5 s or answers something that is not HTTP (for
/// example while it is starting).
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr.parse().ok()?, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

/// The value of `series` (a metric name with its labels, exactly as exposed, such as
/// `spr_ledger_next_offset{partition="0"}`) in a Prometheus text exposition.
pub fn metric_value(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::metric_value;

    #[test]
    fn a_series_is_found_by_its_exact_name_and_labels() {
        let text = "# HELP x_total X\nx_total 3\nx_total_more 9\ny{partition=\"1\"} 4.5\n";
        assert_eq!(metric_value(text, "x_total"), Some(3.0));
        assert_eq!(metric_value(text, "y{partition=\"1\"}"), Some(4.5));
        assert_eq!(metric_value(text, "y{partition=\"2\"}"), None);
        assert_eq!(metric_value(text, "x"), None);
    }
}

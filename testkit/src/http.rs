//! Plain HTTP/1.1 reads of a service's operations port (`/metrics`, `/ready`) and the
//! values in a Prometheus exposition.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

/// An address on 127.0.0.1 with a port that was free a moment ago, for a service's
/// `--metrics-addr`.
pub fn free_local_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    format!("127.0.0.1:{}", listener.local_addr().expect("bound").port())
}

/// `GET path` from `addr` (host:port): the status and the body. Panics if the service
/// does not answer.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting {addr}: {e}"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    let status = response[9..12].parse().expect("an HTTP status");
    let body = response
        .split_once("\r\n\r\n")
        .expect("headers end")
        .1
        .to_owned();
    (status, body)
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

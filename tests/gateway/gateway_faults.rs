//! Faults a real Pushgateway cannot be made to produce (a body cut short, a hang mid-body,
//! garbage, a missing or garbled Date header, an error status). A tiny raw-HTTP server on a
//! loopback port stands in for the gateway ONLY for these; everything a real gateway can show is
//! tested against one in `gateway_client.rs`.

use std::time::Duration;

use pushgateway_janitor::gateway::Gateway;
use pushgateway_janitor::model::Naming;
use pushgateway_janitor::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_secs(2);
const DATE: &str = "Date: Sat, 21 Nov 2026 22:51:45 GMT\r\n";
const GOOD: &str = r#"{"status":"success","data":[{"labels":{"job":"a"},"last_push_successful":true,"push_time_seconds":{"metrics":[{"value":"1.7953015055736797e+09"}]}}]}"#;

/// What the mock writes after reading a request head.
struct Reply {
    head: String,
    body: String,
    /// Keep the connection open this long after writing, instead of closing it.
    hang: Option<Duration>,
}

fn reply(status: &str, headers: &str, body: &str) -> Reply {
    Reply {
        head: format!("HTTP/1.1 {status}\r\n{headers}Connection: close\r\n\r\n"),
        body: body.to_string(),
        hang: None,
    }
}

/// Serves `reply` to every connection; the server task ends with the test's runtime.
/// The base URL carries credentials so every test also checks they stay out of errors.
async fn mock(reply: Reply) -> Gateway {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let reply = std::sync::Arc::new(reply);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let reply = reply.clone();
            tokio::spawn(async move {
                // Read the request head (bounded); no request here has a body.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(reply.head.as_bytes()).await;
                let _ = conn.write_all(reply.body.as_bytes()).await;
                let _ = conn.flush().await;
                if let Some(hang) = reply.hang {
                    tokio::time::sleep(hang).await;
                }
            });
        }
    });
    let base = url::Url::parse(&format!("http://user:secret@127.0.0.1:{port}/")).unwrap();
    Gateway::new(base, reqwest::Client::new(), TIMEOUT)
}

fn assert_bad_response(err: &Error, needle: &str) {
    let message = err.to_string();
    assert!(matches!(err, Error::BadResponse { .. }), "{message}");
    assert!(
        message.contains("127.0.0.1"),
        "names the replica: {message}"
    );
    assert!(!message.contains("secret"), "no credentials: {message}");
    assert!(message.contains(needle), "{needle:?} in {message}");
}

#[tokio::test]
async fn a_well_formed_answer_is_read_with_the_date_as_clock() {
    let gw = mock(reply("200 OK", DATE, GOOD)).await;
    let snapshot = gw.read(None, Naming::Legacy).await.unwrap();
    assert_eq!(snapshot.clock, 1_795_301_505.0);
    assert_eq!(snapshot.groups.len(), 1);
}

#[tokio::test]
async fn a_body_cut_short_by_the_connection_is_a_bad_response() {
    let headers = format!("{DATE}Content-Length: {}\r\n", GOOD.len() + 100);
    let gw = mock(reply("200 OK", &headers, &GOOD[..40])).await;
    let err = gw.read(None, Naming::Legacy).await.unwrap_err();
    assert_bad_response(&err, "body broke off");
}

#[tokio::test]
async fn a_truncated_json_document_is_a_bad_response_with_its_position() {
    let gw = mock(reply("200 OK", DATE, &GOOD[..GOOD.len() - 2])).await;
    let err = gw.read(None, Naming::Legacy).await.unwrap_err();
    assert_bad_response(&err, "EOF while parsing");
    assert_bad_response(&err, "line 1 column");
}

#[tokio::test]
async fn garbage_is_a_bad_response() {
    let gw = mock(reply("200 OK", DATE, "<html>upstream connect error</html>")).await;
    let err = gw.read(None, Naming::Legacy).await.unwrap_err();
    assert_bad_response(&err, "line 1 column 1");
}

#[tokio::test]
async fn an_error_status_in_the_body_is_a_bad_response() {
    let body = r#"{"status":"error","errorType":"internal","error":"boom"}"#;
    let gw = mock(reply("200 OK", DATE, body)).await;
    assert_bad_response(&gw.read(None, Naming::Legacy).await.unwrap_err(), "boom");
}

#[tokio::test]
async fn a_missing_or_garbled_date_never_falls_back_to_the_local_clock() {
    let gw = mock(reply("200 OK", "", GOOD)).await;
    assert_bad_response(&gw.read(None, Naming::Legacy).await.unwrap_err(), "Date");
    let gw = mock(reply("200 OK", "Date: yesterday\r\n", GOOD)).await;
    assert_bad_response(&gw.read(None, Naming::Legacy).await.unwrap_err(), "Date");
}

#[tokio::test]
async fn a_replica_hanging_mid_body_times_out() {
    let headers = format!("{DATE}Content-Length: {}\r\n", GOOD.len());
    let mut hanging = reply("200 OK", &headers, &GOOD[..50]);
    hanging.hang = Some(Duration::from_secs(60));
    let gw = mock(hanging).await;
    // The bound is the test's own: the read must end by its timeout, not after the 60 s hang.
    let err = tokio::time::timeout(
        TIMEOUT + Duration::from_secs(30),
        gw.read(None, Naming::Legacy),
    )
    .await
    .expect("the read ended by its own timeout, not after the hang")
    .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
    // The other calls are bounded the same way.
    assert!(matches!(gw.status().await, Err(Error::Timeout { .. })));
}

#[tokio::test]
async fn http_errors_carry_a_short_body_excerpt() {
    let long = format!("queue\nfull {}", "x".repeat(10_000));
    let gw = mock(reply("503 Service Unavailable", DATE, &long)).await;
    let key = [("job".to_string(), "a".to_string())].into();
    match gw.delete(&key, Naming::Legacy).await.unwrap_err() {
        Error::Status { url, status, body } => {
            assert_eq!(status, 503);
            assert!(
                url.ends_with("/metrics/job@base64/YQ") && !url.contains("secret"),
                "{url}"
            );
            assert!(
                body.starts_with("queue full x") && body.len() <= 300,
                "{body}"
            );
        }
        other => panic!("{other}"),
    }
    assert!(matches!(
        gw.read(None, Naming::Legacy).await,
        Err(Error::Status { status: 503, .. })
    ));
    assert!(matches!(
        gw.healthy().await,
        Err(Error::Status { status: 503, .. })
    ));
}

#[tokio::test]
async fn healthy_is_false_when_the_write_queue_is_full() {
    let gw = mock(reply("500 Internal Server Error", DATE, "")).await;
    assert!(!gw.healthy().await.unwrap());
    let gw = mock(reply("200 OK", DATE, "OK")).await;
    assert!(gw.healthy().await.unwrap());
}

//! The fault proxy does what each fault says, checked byte by byte against an echo server on
//! loopback (the proxy's own mechanics; the backends' fault tests run it in front of the real
//! Redis and memcached).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use lexicache_testkit::proxy::{Fault, FaultProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, Instant};

/// An echo server: every byte read is written back.
async fn echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0; 4096];
                while let Ok(n @ 1..) = conn.read(&mut buf).await {
                    if conn.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn round_trip(client: &mut TcpStream, message: &[u8]) -> io::Result<Vec<u8>> {
    client.write_all(message).await?;
    let mut reply = vec![0; message.len()];
    client.read_exact(&mut reply).await?;
    Ok(reply)
}

const QUIET: Duration = Duration::from_millis(100);

#[tokio::test]
async fn pass_through_forwards_both_ways_and_logs_when_asked() {
    let proxy = FaultProxy::start(echo().await).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(
        round_trip(&mut client, b"unlogged").await.unwrap(),
        b"unlogged"
    );
    proxy.record(true);
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(round_trip(&mut client, &big).await.unwrap(), big);
    assert_eq!(proxy.sent_to_server(), big);
    assert_eq!(proxy.sent_to_client(), big);
    proxy.clear_log();
    assert!(proxy.sent_to_server().is_empty());
    assert_eq!(proxy.connections_accepted(), 1);
    assert_eq!(proxy.open_connections(), 1);
}

#[tokio::test]
async fn latency_delays_every_reply_but_keeps_order() {
    let proxy = FaultProxy::start(echo().await).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    proxy.set_fault(Fault::Latency(Duration::from_millis(150)));
    let started = Instant::now();
    client.write_all(b"one").await.unwrap();
    client.write_all(b"two").await.unwrap();
    let mut reply = [0; 6];
    client.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"onetwo");
    assert!(started.elapsed() >= Duration::from_millis(150));
    proxy.set_fault(Fault::PassThrough);
    assert_eq!(round_trip(&mut client, b"fast").await.unwrap(), b"fast");
}

#[tokio::test]
async fn a_blackhole_never_answers_and_its_connections_stay_dead() {
    let proxy = FaultProxy::start(echo().await).await.unwrap();
    let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
    proxy.set_fault(Fault::Blackhole);
    assert!(timeout(QUIET, round_trip(&mut old, b"lost")).await.is_err());
    // New connections are accepted but never answered either.
    let mut during = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(timeout(QUIET, round_trip(&mut during, b"lost"))
        .await
        .is_err());

    proxy.set_fault(Fault::PassThrough);
    assert!(timeout(QUIET, round_trip(&mut old, b"still"))
        .await
        .is_err());
    let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut fresh, b"back").await.unwrap(), b"back");
    assert_eq!(proxy.connections_accepted(), 3);
}

#[tokio::test]
async fn reset_resets_open_and_new_connections() {
    let proxy = FaultProxy::start(echo().await).await.unwrap();
    let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut open, b"hi").await.unwrap(), b"hi");
    proxy.set_fault(Fault::Reset);
    let mut buf = [0; 8];
    let err = open.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);

    let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
    let read = new.read(&mut buf).await;
    assert!(
        matches!(&read, Err(e) if e.kind() == io::ErrorKind::ConnectionReset),
        "{read:?}"
    );
    proxy.set_fault(Fault::PassThrough);
    let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut fresh, b"back").await.unwrap(), b"back");
}

#[tokio::test]
async fn close_after_cuts_the_reply_at_n_bytes_then_ends_the_stream() {
    let proxy = FaultProxy::start(echo().await).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut client, b"before").await.unwrap(), b"before");
    proxy.set_fault(Fault::CloseAfter(5));
    client.write_all(b"0123456789").await.unwrap();
    let mut got = Vec::new();
    timeout(Duration::from_secs(5), client.read_to_end(&mut got))
        .await
        .expect("the proxy closes the connection")
        .unwrap();
    assert_eq!(got, b"01234");
    // Each new connection gets the budget afresh.
    let mut next = TcpStream::connect(proxy.addr()).await.unwrap();
    next.write_all(b"abcdefgh").await.unwrap();
    let mut got = Vec::new();
    next.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"abcde");
}

#[tokio::test]
async fn a_dead_upstream_resets_the_client() {
    // Bind and drop: nothing listens there any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = FaultProxy::start(port).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut buf = [0; 4];
    let read = timeout(Duration::from_secs(5), client.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn dropping_the_proxy_closes_its_connections() {
    let proxy = FaultProxy::start(echo().await).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut client, b"hi").await.unwrap(), b"hi");
    drop(proxy);
    let mut buf = [0; 4];
    let read = timeout(Duration::from_secs(5), client.read(&mut buf))
        .await
        .expect("the connection is closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn only_loopback_upstreams_are_accepted() {
    let err = FaultProxy::start("192.0.2.1:6379").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("loopback"), "{err}");
}

//! standby-common's NUT client (`standby_common::nut`) against a real upsd with Debian's
//! dummy-ups driver: reading status, charge and runtime; a power cut written into the dummy's
//! file; USERNAME/PASSWORD; and the failures that must exit 4 without hanging: an unknown
//! UPS, a stopped upsd, and a listener that accepts and never answers.

#![allow(clippy::unwrap_used)] // a panic is a failed test

use std::time::Duration;

use standby_common::exit::{code_of, Code};
use standby_common::nut::{self, Auth, Client};
use standby_common::secret::Secret;

const T: Duration = Duration::from_secs(5);

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

#[test]
fn reads_the_ups_and_sees_a_power_cut() {
    let ups = standby_e2e::Nut::start().unwrap();
    let r = block(nut::read(&ups.address(), "apc", T, None)).unwrap();
    assert!(r.status.on_line() && !r.status.on_battery(), "{r:?}");
    assert_eq!((r.charge, r.runtime_s), (Some(100.0), Some(5400.0)));

    block(async {
        let mut c = Client::connect(&ups.address(), T, None).await.unwrap();
        assert_eq!(c.get_var("apc", "ups.status").await.unwrap(), "OL");
        let vars = c.list_var("apc").await.unwrap();
        assert_eq!(vars.get("driver.name").map(String::as_str), Some("dummy-ups"));
        // The session survives an error answer.
        let e = c.get_var("apc", "no.such.var").await.unwrap_err();
        assert_eq!(code_of(&e), Code::Failed, "{e:#}");
        assert_eq!(c.get_var("apc", "battery.charge").await.unwrap(), "100");
        c.logout().await;
    });

    ups.on_battery(55, 600).unwrap();
    ups.wait_status("OB DISCHRG", Duration::from_secs(20)).unwrap();
    let r = block(nut::read(&ups.address(), "apc", T, None)).unwrap();
    assert!(r.status.on_battery() && r.status.has("DISCHRG") && !r.status.low_battery(), "{r:?}");
    assert_eq!((r.charge, r.runtime_s), (Some(55.0), Some(600.0)));

    ups.low_battery(10, 90).unwrap();
    ups.wait_status("OB DISCHRG LB", Duration::from_secs(20)).unwrap();
    let r = block(nut::read(&ups.address(), "apc", T, None)).unwrap();
    assert!(r.status.low_battery() && r.status.on_battery(), "{r:?}");
}

#[test]
fn logs_in_without_printing_the_password() {
    let ups = standby_e2e::Nut::start().unwrap();
    let auth = Auth { username: "monitor".into(), password: Secret::new("s3cret pass\"word") };
    let r = block(nut::read(&ups.address(), "apc", T, Some(&auth))).unwrap();
    assert!(r.status.on_line());
    let e = block(nut::read(&ups.address(), "nosuchups", T, Some(&auth))).unwrap_err();
    assert!(!format!("{e:#} {e:?}").contains("s3cret"), "{e:#}");
}

#[test]
fn unreachable_upsd_or_ups_exits_4() {
    let mut ups = standby_e2e::Nut::start().unwrap();
    let e = block(nut::read(&ups.address(), "nosuchups", T, None)).unwrap_err();
    assert_eq!(code_of(&e), Code::Unavailable, "{e:#}");
    assert!(format!("{e:#}").contains("UNKNOWN-UPS"), "{e:#}");

    let address = ups.address();
    ups.stop_upsd();
    let e = block(nut::read(&address, "apc", T, None)).unwrap_err();
    assert_eq!(code_of(&e), Code::Unavailable, "{e:#}");
    assert!(format!("{e:#}").contains("unreachable"), "{e:#}");

    // Accepts the connection, never answers: bounded by the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap().to_string();
    let e = block(nut::read(&address, "apc", Duration::from_millis(300), None)).unwrap_err();
    assert_eq!(code_of(&e), Code::Unavailable, "{e:#}");
    assert!(format!("{e:#}").contains("no answer"), "{e:#}");
}

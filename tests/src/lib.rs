//! The test harness: real servers on loopback (filled in next).

//! The `[smoke-test]` section: defaults for every run, each key also a flag (`--key`) and an
//! env var (`STANDBY_SMOKE_TEST_KEY`); the flag wins, then the env var, then this file, then
//! the default. [`RunOptions::from_config`](crate::RunOptions::from_config) turns it into
//! what a run needs, for the CLI and for blue-green-deploy alike.

use std::path::PathBuf;

use standby_common::duration::HumanDuration;

use crate::Format;

standby_common::section! {
    /// Settings of smoke-test.
    pub struct Config {
        /// Base URL joined with each check's `path`
        #[arg(long, value_name = "URL")]
        pub base_url: Option<String>,
        /// Requests in flight at most
        #[arg(long, short = 'j', value_name = "N", default_value_t = 4)]
        pub jobs: usize,
        /// Retries for checks that set none
        #[arg(long, value_name = "N", default_value_t = 0)]
        pub retries: u32,
        /// First delay between retries, doubling each time
        #[arg(long, value_name = "DUR", default_value = "500ms")]
        pub retry_delay: HumanDuration,
        /// Whole-request timeout for checks that set none
        #[arg(long, value_name = "DUR", default_value = "10s")]
        pub timeout: HumanDuration,
        /// Report format [default: human; json with --json]
        #[arg(long, value_enum)]
        pub format: Option<Format>,
        /// Trust this PEM CA bundle too (a private CA, a self-signed origin)
        #[arg(long, value_name = "FILE")]
        pub cacert: Option<PathBuf>,
        /// Accept any TLS certificate (never the default)
        #[arg(long)]
        pub insecure: bool,
        /// Follow redirects (up to 10) for checks that do not say
        #[arg(long)]
        pub follow_redirects: bool,
        /// Bytes of a body read at most (and again after decoding gzip/br/zstd); a check
        /// whose body is longer fails and says so
        #[arg(long, value_name = "BYTES", default_value_t = crate::runner::MAX_BODY)]
        pub max_body: usize,
        /// More query parameters whose values reports hide, besides the built-in list
        /// (password, token, api_key, key, secret, signature, …); repeat the flag for several
        #[arg(long = "redact-query", value_name = "NAME")]
        pub redact_query: Vec<String>,
    }
}

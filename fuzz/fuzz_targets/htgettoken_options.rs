//! htgettoken options as the storer reads them (`SEC_CREDENTIAL_GETTOKEN_OPTS`,
//! request `&options=`): shell words, options, requests; also durations.

#![no_main]

use libfuzzer_sys::fuzz_target;
use robot_credmon::store::request;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(words) = request::shell_words(&text) {
        let _ = request::parse_htgettoken_opts(&words, "fuzz");
    }
    let words: Vec<String> = text.split('\0').map(str::to_owned).collect();
    let _ = request::parse_htgettoken_opts(&words, "fuzz");
    let _ = request::parse_request(&text);
    let _ = robot_credmon::cli::parse_duration(&text);
});

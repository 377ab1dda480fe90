//! Pure parsing of what condor_submit hands the storer: the request strings
//! `service[&handle=H][&scopes=a,b][&audience=X][&options=...]` and the
//! htgettoken options of `SEC_CREDENTIAL_GETTOKEN_OPTS` / `$HTGETTOKENOPTS`.

use crate::duration::parse_ttl;
use std::path::PathBuf;
use std::time::Duration;

/// One credential request from condor_submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The service, `issuer[_role]`.
    pub service: String,
    /// The handle (`&handle=`), making the credential `<service>_<handle>`.
    pub handle: Option<String>,
    /// Reduced scopes, comma separated.
    pub scopes: Option<String>,
    /// Audience.
    pub audience: Option<String>,
    /// Extra htgettoken options for this request.
    pub options: Option<String>,
}

impl Request {
    /// The issuer: the service up to the first `_`.
    pub fn issuer(&self) -> &str {
        self.service
            .split_once('_')
            .map_or(self.service.as_str(), |(i, _)| i)
    }

    /// The role: the service after the first `_`, when there is one.
    pub fn role(&self) -> Option<&str> {
        self.service.split_once('_').map(|(_, r)| r)
    }

    /// The credential name of the handle, `<service>_<handle>`.
    pub fn handle_service(&self) -> Option<String> {
        self.handle
            .as_ref()
            .map(|h| format!("{}_{h}", self.service))
    }
}

fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Parses one request. Scopes or audience need a handle (HTCONDOR-2038).
pub fn parse_request(text: &str) -> Result<Request, String> {
    let (head, options) = match text.split_once("&options=") {
        Some((h, o)) => (h, Some(o.to_owned())),
        None => (text, None),
    };
    let mut parts = head.split('&');
    let service = parts.next().unwrap_or_default().to_owned();
    if !plain(&service) {
        return Err(format!(
            "invalid service name '{service}' in request '{text}' (expected issuer[_role])"
        ));
    }
    let mut req = Request {
        service,
        handle: None,
        scopes: None,
        audience: None,
        options,
    };
    for part in parts {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("invalid part '{part}' in request '{text}'"))?;
        let value = value.to_owned();
        match key {
            "handle" if plain(&value) => req.handle = Some(value),
            "handle" => return Err(format!("invalid handle '{value}' in request '{text}'")),
            "scopes" => {
                let v: Vec<&str> = value.split([',', ' ']).filter(|s| !s.is_empty()).collect();
                req.scopes = (!v.is_empty()).then(|| v.join(","));
            }
            "audience" => req.audience = (!value.is_empty()).then_some(value),
            _ => return Err(format!("unknown key '{key}' in request '{text}'")),
        }
    }
    if req.handle.is_none() && (req.scopes.is_some() || req.audience.is_some()) {
        return Err("reduced scopes or audience require a handle".into());
    }
    Ok(req)
}

/// The htgettoken options the storer understands, with htgettoken's defaults
/// where it has them (`None`: the caller decides).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HtOpts {
    /// `-a/--vaultserver`.
    pub vaultserver: Option<String>,
    /// `-i/--issuer` (default `default`).
    pub issuer: Option<String>,
    /// `-r/--role` (default `default`).
    pub role: Option<String>,
    /// `--credkey`.
    pub credkey: Option<String>,
    /// `--vaulttokenttl`.
    pub vaulttokenttl: Option<Duration>,
    /// `--vaulttokenminttl`.
    pub vaulttokenminttl: Option<Duration>,
    /// `--minsecs`.
    pub minsecs: Option<u64>,
    /// `--cafile`.
    pub cafile: Option<PathBuf>,
    /// `--capath`.
    pub capath: Option<PathBuf>,
    /// `--vaultalias`.
    pub vaultalias: Option<String>,
    /// `--vaultcertname`.
    pub vaultcertname: Option<String>,
    /// `--scopes`.
    pub scopes: Option<String>,
    /// `--audience`.
    pub audience: Option<String>,
    /// `--web-open-command`.
    pub web_open_command: Option<String>,
    /// `--nooidc` (or `--novaulttoken`).
    pub nooidc: bool,
    /// `--nokerberos` (or `--novaulttoken`).
    pub nokerberos: bool,
}

/// Options that take a value: (short, long).
const VALUED: &[(&str, &str)] = &[
    ("-a", "--vaultserver"),
    ("-i", "--issuer"),
    ("-r", "--role"),
    ("", "--credkey"),
    ("", "--vaulttokenttl"),
    ("", "--vaulttokenminttl"),
    ("-m", "--minsecs"),
    ("", "--cafile"),
    ("", "--capath"),
    ("", "--vaultalias"),
    ("", "--vaultcertname"),
    ("", "--scopes"),
    ("", "--audience"),
    ("", "--web-open-command"),
    // Accepted and ignored: the storer decides its own files.
    ("-o", "--outfile"),
    ("", "--vaulttokenfile"),
    ("", "--vaulttokeninfile"),
    ("", "--kerbprincipal"),
];

/// Flags: accepted (the ones that matter are handled in [`parse_htgettoken_opts`]).
const FLAGS: &[&str] = &[
    "-v",
    "--verbose",
    "-d",
    "--debug",
    "-q",
    "--quiet",
    "--nooidc",
    "--nokerberos",
    "--nossh",
    "--novaulttoken",
    "--showbearerurl",
];

/// Parses htgettoken options (words already split); later options win.
/// `source` names where they came from, for the error message.
/// (Long: one flat match over htgettoken's options, one arm per option.)
pub fn parse_htgettoken_opts(words: &[String], source: &str) -> Result<HtOpts, String> {
    let mut o = HtOpts::default();
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        i += 1;
        if FLAGS.contains(&w) {
            match w {
                "--nooidc" => o.nooidc = true,
                "--nokerberos" => o.nokerberos = true,
                "--novaulttoken" => {
                    o.nooidc = true;
                    o.nokerberos = true;
                }
                _ => {}
            }
            continue;
        }
        let found = VALUED.iter().find_map(|(short, long)| {
            if let Some(v) = w.strip_prefix(long).and_then(|r| r.strip_prefix('=')) {
                Some((*long, Some(v.to_owned())))
            } else if w == *long || (!short.is_empty() && w == *short) {
                Some((*long, None))
            } else if !short.is_empty() && w.len() > 2 && w.starts_with(short) {
                Some((*long, Some(w[2..].to_owned())))
            } else {
                None
            }
        });
        let Some((long, inline)) = found else {
            return Err(format!(
                "unsupported htgettoken option '{w}' in {source} (robot-credmon understands {})",
                VALUED
                    .iter()
                    .map(|(_, l)| *l)
                    .chain(FLAGS.iter().copied().filter(|f| f.starts_with("--")))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        };
        let value = match inline {
            Some(v) => v,
            None => {
                let v = words
                    .get(i)
                    .cloned()
                    .ok_or_else(|| format!("option {long} needs a value in {source}"))?;
                i += 1;
                v
            }
        };
        let dur = |v: &str| parse_ttl(v).map_err(|e| format!("{long} in {source}: {e}"));
        match long {
            "--vaultserver" => o.vaultserver = Some(value),
            "--issuer" => o.issuer = Some(value),
            "--role" => o.role = Some(value),
            "--credkey" => o.credkey = Some(value),
            "--vaulttokenttl" => o.vaulttokenttl = Some(dur(&value)?),
            "--vaulttokenminttl" => o.vaulttokenminttl = Some(dur(&value)?),
            "--minsecs" => {
                o.minsecs = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|n| *n <= crate::duration::MAX_SECONDS)
                        .ok_or_else(|| {
                            format!("--minsecs in {source}: not a number of seconds '{value}'")
                        })?,
                )
            }
            "--cafile" => o.cafile = Some(value.into()),
            "--capath" => o.capath = Some(value.into()),
            "--vaultalias" => o.vaultalias = Some(value),
            "--vaultcertname" => o.vaultcertname = Some(value),
            "--scopes" => o.scopes = Some(value),
            "--audience" => o.audience = Some(value),
            "--web-open-command" => o.web_open_command = Some(value),
            _ => {}
        }
    }
    Ok(o)
}

/// Splits like Python's `shlex.split(text, comments=True)`: blanks separate
/// words, quotes and backslashes group, `#` at the start of a word starts a comment.
/// (Long: one character-at-a-time state machine; split, its quoting rules would scatter.)
pub fn shell_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '#' if !in_word => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => return Err(format!("no closing quotation in '{text}'")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => cur.push(n),
                            Some(n) => {
                                cur.push('\\');
                                cur.push(n);
                            }
                            None => return Err(format!("no closing quotation in '{text}'")),
                        },
                        Some(n) => cur.push(n),
                        None => return Err(format!("no closing quotation in '{text}'")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => return Err(format!("no escaped character in '{text}'")),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(
        s: &str,
        h: Option<&str>,
        sc: Option<&str>,
        a: Option<&str>,
        o: Option<&str>,
    ) -> Request {
        Request {
            service: s.into(),
            handle: h.map(Into::into),
            scopes: sc.map(Into::into),
            audience: a.map(Into::into),
            options: o.map(Into::into),
        }
    }

    #[test]
    fn requests() {
        let cases = [
            ("igwn", Ok(req("igwn", None, None, None, None))),
            (
                "igwn_prod&handle=h1&scopes=read:/a,write:/b&audience=https://x",
                Ok(req(
                    "igwn_prod",
                    Some("h1"),
                    Some("read:/a,write:/b"),
                    Some("https://x"),
                    None,
                )),
            ),
            (
                "igwn&handle=h&options=--minsecs=100 -r x",
                Ok(req(
                    "igwn",
                    Some("h"),
                    None,
                    None,
                    Some("--minsecs=100 -r x"),
                )),
            ),
            (
                "igwn&scopes=a",
                Err("reduced scopes or audience require a handle".to_owned()),
            ),
            (
                "igwn&audience=a",
                Err("reduced scopes or audience require a handle".to_owned()),
            ),
            (
                "",
                Err("invalid service name '' in request '' (expected issuer[_role])".to_owned()),
            ),
            (
                "igwn&colour=red",
                Err("unknown key 'colour' in request 'igwn&colour=red'".to_owned()),
            ),
            (
                "igwn&handle=a/b",
                Err("invalid handle 'a/b' in request 'igwn&handle=a/b'".to_owned()),
            ),
            (
                "a/b",
                Err(
                    "invalid service name 'a/b' in request 'a/b' (expected issuer[_role])"
                        .to_owned(),
                ),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_request(text), want, "{text}");
        }
        let r = parse_request("igwn_robot_x&handle=h").unwrap();
        assert_eq!((r.issuer(), r.role()), ("igwn", Some("robot_x")));
        assert_eq!(r.handle_service().as_deref(), Some("igwn_robot_x_h"));
        assert_eq!(parse_request("igwn").unwrap().role(), None);
    }

    #[test]
    fn htgettoken_options() {
        let w = |s: &str| shell_words(s).unwrap();
        let o = parse_htgettoken_opts(
            &w("-a vault.example:8200 --credkey=robot/h.example -r robot -i igwn --vaulttokenttl 28d --nooidc -q --minsecs=60 -rprod"),
            "X",
        )
        .unwrap();
        assert_eq!(o.vaultserver.as_deref(), Some("vault.example:8200"));
        assert_eq!(o.credkey.as_deref(), Some("robot/h.example"));
        assert_eq!(o.role.as_deref(), Some("prod"));
        assert_eq!(o.issuer.as_deref(), Some("igwn"));
        assert_eq!(o.vaulttokenttl, Some(Duration::from_secs(28 * 86400)));
        assert_eq!(o.minsecs, Some(60));
        assert!(o.nooidc && !o.nokerberos);
        assert!(
            parse_htgettoken_opts(&w("--novaulttoken"), "X")
                .unwrap()
                .nokerberos
        );
        let e =
            parse_htgettoken_opts(&w("-s optserver"), "SEC_CREDENTIAL_GETTOKEN_OPTS").unwrap_err();
        assert!(
            e.starts_with("unsupported htgettoken option '-s' in SEC_CREDENTIAL_GETTOKEN_OPTS"),
            "{e}"
        );
        assert_eq!(
            parse_htgettoken_opts(&w("-a"), "X").unwrap_err(),
            "option --vaultserver needs a value in X"
        );
        // Lifetimes are range-checked where they are parsed.
        for opts in [
            "--vaulttokenttl 100000d",
            "--vaulttokenminttl=99999999999999999",
            "--minsecs 18446744073709551615",
        ] {
            let e = parse_htgettoken_opts(&w(opts), "X").unwrap_err();
            assert!(e.contains(" in X"), "{opts}: {e}");
        }
    }

    #[test]
    fn words() {
        for (text, want) in [
            ("-a v  --credkey=x", vec!["-a", "v", "--credkey=x"]),
            ("'a b' \"c d\" e\\ f", vec!["a b", "c d", "e f"]),
            ("-a v # comment -r x", vec!["-a", "v"]),
            ("a#b", vec!["a#b"]),
            ("", vec![]),
        ] {
            assert_eq!(shell_words(text).unwrap(), want, "{text}");
        }
        assert!(shell_words("'open").is_err());
    }
}

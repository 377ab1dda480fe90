//! Pure parsing of what condor_submit hands the storer: the request strings
//! `service[&handle=H][&scopes=a,b][&audience=X][&options=...]` (their
//! htgettoken options are parsed in `options.rs`).

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
}

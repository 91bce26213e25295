//! Authentication: credentials per registry (or per repository, where an auth file has an entry
//! for one), the scheme each registry asked for, and Bearer tokens cached by scope until they
//! expire, with the token server that gave them so an expired one is renewed before it is
//! needed. The token request itself (its URL, OAuth2 form, answer and scopes) is built and read
//! by pure functions at the bottom; sending it is the only I/O here.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use http::{HeaderMap, Method, Request, Response, header};
use hyper::body::Incoming;
use url::Url;

use crate::body::ReqBody;
use crate::client::{Client, Scopes, retry_after};
use crate::credentials::{self, Credentials};
use crate::document::read_capped;
use crate::protocol::challenge::{Challenge, parse_challenges};
use crate::protocol::location::display_url;
use crate::protocol::response::{Phase, Step, classify};
use crate::{Error, Result, Secret};

/// The shortest token lifetime assumed, whatever `expires_in` says (seconds).
const MIN_TOKEN_TTL_SECS: u64 = 10;
/// The longest token lifetime trusted (one day); longer-lived tokens are simply fetched again.
const MAX_TOKEN_TTL_SECS: u64 = 24 * 60 * 60;
/// The `client_id` of an OAuth2 token request (docker sends `docker`, containers/image its
/// own name).
const OAUTH_CLIENT_ID: &str = "hoist";

#[derive(Default)]
pub(crate) struct AuthState {
    /// Credentials looked up per (registry, repository), resolved once (None = anonymous); the
    /// repository is empty for a request that is for none.
    creds: HashMap<(String, String), Option<Credentials>>,
    /// The auth file the looked-up credentials of a (registry, repository) came from.
    creds_file: HashMap<(String, String), PathBuf>,
    /// The scheme each registry asked for.
    scheme: HashMap<String, Scheme>,
    /// Bearer tokens by (registry, scopes).
    tokens: HashMap<(String, String), (Secret, Instant)>,
    /// The token server that answered for (registry, scopes), to fetch an expired token from
    /// again before a request rather than after its 401.
    challenges: HashMap<(String, String), TokenServer>,
}

#[derive(Clone)]
pub(crate) enum Scheme {
    Basic,
    Bearer,
}

impl Client {
    /// What a 401 from `registry` says about the credentials hoist holds for it, when that is
    /// known without asking anyone: given by the caller, or already looked up (a credential
    /// helper is never run for an error message). Names the auth file refused credentials came
    /// from, or the files searched in vain, so a user sees which file to fix. Those looked up
    /// for `repository` (the refused request's) are named; for a 401 that names none (a token
    /// server's), or one never looked up, those found for any of the registry's repositories.
    pub(crate) async fn credentials_hint(
        &self,
        registry: &str,
        repository: Option<&str>,
    ) -> Option<String> {
        let cfg = &self.inner.cfg;
        let given = cfg.credentials.is_some()
            || cfg
                .registry_credentials
                .iter()
                .any(|(r, _)| r.eq_ignore_ascii_case(registry));
        let had = if given {
            Had::Given
        } else {
            let auth = self.inner.auth.lock().await;
            let of_registry = auth.creds.iter().filter(|((r, _), _)| r == registry);
            let mut looked_up: Vec<_> = of_registry
                .clone()
                .filter(|((_, repo), _)| repository.is_some_and(|want| repo == want))
                .collect();
            if looked_up.is_empty() {
                looked_up = of_registry.collect();
            }
            if looked_up.is_empty() {
                return None;
            }
            match looked_up.iter().find(|(_, c)| c.is_some()) {
                Some((key, _)) => match auth.creds_file.get(*key) {
                    Some(file) => Had::From(file.clone()),
                    None => Had::Given,
                },
                None => Had::Nothing,
            }
        };
        Some(unauthorized_hint(
            registry,
            &had,
            &self.auth_files(registry),
        ))
    }

    /// The files credentials for `registry` are looked up in: the one the caller named for it,
    /// else the one named for all, else the default search list; none when the caller turned
    /// the lookup off.
    fn auth_files(&self, registry: &str) -> Vec<PathBuf> {
        let cfg = &self.inner.cfg;
        if cfg
            .anonymous_registries
            .iter()
            .any(|r| r.eq_ignore_ascii_case(registry))
        {
            return Vec::new();
        }
        let named = cfg.registry_auth_files.iter().rev();
        let for_registry = named
            .filter(|(r, _)| r.eq_ignore_ascii_case(registry))
            .map(|(_, path)| path);
        match (
            for_registry.chain(&cfg.docker_config).next(),
            cfg.use_docker_config,
        ) {
            (_, false) => Vec::new(),
            (Some(path), true) => vec![path.clone()],
            (None, true) => credentials::default_auth_files(),
        }
    }

    /// Every credential this client holds or has sent: each password, its `Basic` value, each
    /// identity token and each Bearer token. An error message built from a server's words must
    /// repeat none of them (a server may echo the `Authorization` header back).
    pub(crate) async fn known_secrets(&self) -> Vec<String> {
        let cfg = &self.inner.cfg;
        let auth = self.inner.auth.lock().await;
        let given = cfg.credentials.iter();
        let named = cfg.registry_credentials.iter().map(|(_, c)| c);
        let looked_up = auth.creds.values().flatten();
        let mut out = Vec::new();
        for c in given.chain(named).chain(looked_up) {
            out.push(c.password.expose().to_owned());
            out.push(c.basic_value());
            out.extend(c.identity_token().map(|t| t.expose().to_owned()));
        }
        out.extend(auth.tokens.values().map(|(t, _)| t.expose().to_owned()));
        out
    }

    /// The credentials for a request to `registry` with `scopes`: the caller's, else those an
    /// auth file holds for the repository the request is for (its first scope), looked up once.
    pub(crate) async fn credentials_for(
        &self,
        registry: &str,
        scopes: &Scopes,
    ) -> Result<Option<Credentials>> {
        let cfg = &self.inner.cfg;
        if cfg
            .anonymous_registries
            .iter()
            .any(|r| r.eq_ignore_ascii_case(registry))
        {
            return Ok(None);
        }
        if let Some(c) = &cfg.credentials {
            return Ok(Some(c.clone()));
        }
        let named = self.inner.cfg.registry_credentials.iter();
        if let Some((_, c)) = named.rev().find(|(r, _)| r.eq_ignore_ascii_case(registry)) {
            return Ok(Some(c.clone()));
        }
        let repo = scope_repository(scopes);
        let key = (registry.to_owned(), repo.unwrap_or_default().to_owned());
        if let Some(c) = self.inner.auth.lock().await.creds.get(&key) {
            return Ok(c.clone());
        }
        let files = self.auth_files(registry);
        let found = credentials::from_auth_files(&files, registry, repo).await?;
        let mut auth = self.inner.auth.lock().await;
        let creds = found.map(|(creds, file)| {
            auth.creds_file.insert(key.clone(), file);
            creds
        });
        auth.creds.insert(key, creds.clone());
        Ok(creds)
    }

    /// The Authorization header for a request to `registry` with `scopes`, from what is known.
    ///
    /// A Bearer token that has expired is fetched anew here, from the token server that
    /// answered for these scopes before, rather than the request going out without one: a
    /// 401 would cost a round trip, and for a PATCH the whole chunk sent for nothing.
    pub(crate) async fn auth_header(
        &self,
        registry: &str,
        scopes: &Scopes,
    ) -> Result<Option<String>> {
        let scheme = self.inner.auth.lock().await.scheme.get(registry).cloned();
        match scheme {
            None => Ok(None),
            Some(Scheme::Basic) => Ok(self
                .credentials_for(registry, scopes)
                .await?
                .and_then(|c| c.basic_header())),
            Some(Scheme::Bearer) => {
                let key = (registry.to_owned(), scopes.join(" "));
                let challenge = {
                    let auth = self.inner.auth.lock().await;
                    let fresh = auth
                        .tokens
                        .get(&key)
                        .filter(|(_, exp)| *exp > Instant::now());
                    if let Some((t, _)) = fresh {
                        return Ok(Some(format!("Bearer {}", t.expose())));
                    }
                    auth.challenges.get(&key).cloned()
                };
                let Some(challenge) = challenge else {
                    return Ok(None);
                };
                let token = self.fetch_and_keep(registry, &challenge, scopes).await?;
                Ok(Some(format!("Bearer {}", token.expose())))
            }
        }
    }

    /// React to a 401: learn the scheme, fetch a token if needed. Returns false when there is
    /// nothing more to try (e.g. Basic without credentials).
    ///
    /// The token is asked for the request's scopes and any the challenge names besides (a
    /// registry may want one hoist did not think of, as containerd merges them): a token
    /// without it would only earn another 401.
    pub(crate) async fn authenticate(
        &self,
        registry: &str,
        headers: &HeaderMap,
        scopes: &Scopes,
    ) -> Result<bool> {
        let challenges: Vec<Challenge> = headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .collect();
        let bearer = challenges.iter().find_map(|c| match c {
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => Some(TokenServer {
                realm: realm.clone(),
                service: service.clone(),
                scopes: merge_scopes(scopes, scope.as_deref()),
            }),
            Challenge::Basic => None,
        });
        if let Some(server) = bearer {
            {
                let mut auth = self.inner.auth.lock().await;
                auth.scheme.insert(registry.to_owned(), Scheme::Bearer);
                let key = (registry.to_owned(), scopes.join(" "));
                auth.challenges.insert(key, server.clone());
            }
            self.fetch_and_keep(registry, &server, scopes).await?;
            return Ok(true);
        }
        if challenges.contains(&Challenge::Basic) {
            let creds = self.credentials_for(registry, scopes).await?;
            self.inner
                .auth
                .lock()
                .await
                .scheme
                .insert(registry.to_owned(), Scheme::Basic);
            return Ok(creds.is_some_and(|c| c.has_password()));
        }
        Ok(false)
    }

    /// Fetch a token for a request with `scopes` from `server` and cache it under them.
    async fn fetch_and_keep(
        &self,
        registry: &str,
        server: &TokenServer,
        scopes: &Scopes,
    ) -> Result<Secret> {
        let (token, ttl) = self.fetch_token(registry, server, scopes).await?;
        self.inner.auth.lock().await.tokens.insert(
            (registry.to_owned(), scopes.join(" ")),
            (token.clone(), Instant::now() + ttl),
        );
        Ok(token)
    }

    /// Ask `server` for a token for `server.scopes`, with the credentials for a request with
    /// `scopes` (whose first names the repository they are looked up for).
    ///
    /// Credentials that hold an identity token exchange it as an OAuth2 refresh token (a
    /// form `POST`, as docker and containers/image do); a token server that does not take
    /// that `POST` (404 or 405, as the distribution spec allows) is asked with `GET` and
    /// `Basic` when there is a password to send, and is an error when there is none.
    /// Everything else is a `GET` with `Basic` (or anonymous).
    async fn fetch_token(
        &self,
        registry: &str,
        server: &TokenServer,
        scopes: &Scopes,
    ) -> Result<(Secret, Duration)> {
        let realm = Url::parse(&server.realm)
            .map_err(|_| Error::misbehaved("the auth challenge's realm is not a URL"))?;
        let realm_host = Self::authority(&realm);
        if realm.scheme() != "https" && !self.plain_http_allowed(&realm_host) {
            return Err(Error::misbehaved(
                "refusing to send credentials to a token realm over plain HTTP",
            )
            .with_url(display_url(&realm)));
        }
        let creds = self.credentials_for(registry, scopes).await?;
        let user_agent = self.inner.cfg.user_agent.as_str();
        if let Some(refresh) = creds.as_ref().and_then(Credentials::identity_token) {
            let form = refresh_token_form(refresh.expose(), server);
            let resp = self
                .send_token_request(&realm, || {
                    Request::builder()
                        .method(Method::POST)
                        .uri(realm.as_str())
                        .header(header::USER_AGENT, user_agent)
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .header(header::CONTENT_LENGTH, form.len())
                        .body(ReqBody::bytes(form.clone()))
                })
                .await?;
            let status = resp.status().as_u16();
            match status {
                200..=299 => return self.read_token(resp, &realm).await,
                404 | 405 if creds.as_ref().is_some_and(Credentials::has_password) => {
                    tracing::debug!(
                        status,
                        realm = %display_url(&realm),
                        "token server takes no OAuth2 POST; asking with GET"
                    );
                }
                404 | 405 => {
                    return Err(Error::refused(format!(
                        "token request failed: the token server does not take an OAuth2 \
                         refresh token (it answered {status}), and the credentials hoist has \
                         for {registry} are an identity token without a password; log in \
                         with a user name and password instead"
                    ))
                    .with_status(status)
                    .with_url(display_url(&realm)));
                }
                _ => return Err(self.error_from(resp, &realm, "token request failed").await),
            }
        }
        let url = token_get_url(realm.clone(), server);
        let basic = creds.as_ref().and_then(Credentials::basic_header);
        let resp = self
            .send_token_request(&url, || {
                let mut req = Request::builder()
                    .method(Method::GET)
                    .uri(url.as_str())
                    .header(header::USER_AGENT, user_agent);
                if let Some(b) = &basic {
                    req = req.header(header::AUTHORIZATION, b.as_str());
                }
                req.body(ReqBody::Empty)
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self.error_from(resp, &url, "token request failed").await);
        }
        self.read_token(resp, &url).await
    }

    /// Send a token request built by `build`, again after a transient status (408, 429, 5xx)
    /// as the client's [`crate::RetryPolicy`] says, honouring `Retry-After` up to its bound:
    /// a token server that is briefly overloaded must not fail a whole push. The last answer,
    /// whatever its status, is returned. A transport error is returned at once: every caller
    /// retries those for the request that needed the token, fetching it again.
    async fn send_token_request(
        &self,
        url: &Url,
        build: impl Fn() -> http::Result<Request<ReqBody>>,
    ) -> Result<Response<Incoming>> {
        let policy = &self.inner.cfg.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let req =
                build().map_err(|e| Error::invalid(format!("building token request: {e}")))?;
            let resp = self.send_raw(req, url, None).await?;
            let status = resp.status().as_u16();
            let after = retry_after(resp.headers());
            match classify(Phase::Plain, status, None, after) {
                Step::Retry { after } if attempt < policy.max_attempts => {
                    tracing::info!(status, url = %display_url(url), "token server busy; retrying");
                    drop(resp);
                    tokio::time::sleep(policy.delay(attempt - 1, after)).await;
                }
                _ => return Ok(resp),
            }
        }
    }

    /// The token and how long to use it, from a token server's successful answer.
    async fn read_token(&self, resp: Response<Incoming>, url: &Url) -> Result<(Secret, Duration)> {
        let shown = display_url(url);
        let body = read_capped(resp, 1 << 20, &shown, self.cfg().timeout).await?;
        parse_token(&body).map_err(|problem| Error::misbehaved(problem).with_url(shown))
    }
}

/// Where and for what a Bearer token is asked: a challenge's realm and service, and the
/// scopes of the request it answered merged with its own.
#[derive(Clone)]
pub(crate) struct TokenServer {
    realm: String,
    service: Option<String>,
    scopes: Vec<String>,
}

/// `requested` followed by each scope the challenge's space-separated `scope` names that none
/// of them covers already, as containerd merges them. The request's scopes come first: the
/// first names the repository whose credentials are used.
fn merge_scopes(requested: &Scopes, challenge: Option<&str>) -> Vec<String> {
    let mut out = requested.to_vec();
    for s in challenge.unwrap_or_default().split_whitespace() {
        if !out.iter().any(|have| covers(have, s)) {
            out.push(s.to_owned());
        }
    }
    out
}

/// Whether a token for the scope `have` grants what `want` asks: the same resource
/// (`type:name`) with every action of `want`, or `*`. A registry that repeats the request's
/// scope with fewer actions (`pull` for a `pull,push` request, `delete` for a `*` one) adds
/// nothing to the token request.
fn covers(have: &str, want: &str) -> bool {
    if have == want {
        return true;
    }
    let (Some((resource, actions)), Some((wanted, asked))) =
        (have.rsplit_once(':'), want.rsplit_once(':'))
    else {
        return false;
    };
    let actions: Vec<&str> = actions.split(',').collect();
    resource == wanted && (actions.contains(&"*") || asked.split(',').all(|a| actions.contains(&a)))
}

/// The `GET` token URL: the realm with `service` and one `scope` per scope (the distribution
/// token spec), after whatever query the realm has.
fn token_get_url(mut realm: Url, server: &TokenServer) -> Url {
    {
        let mut q = realm.query_pairs_mut();
        if let Some(s) = &server.service {
            q.append_pair("service", s);
        }
        for s in &server.scopes {
            q.append_pair("scope", s);
        }
    }
    realm
}

/// The form body of an OAuth2 refresh-token grant (RFC 6749 section 6, the distribution
/// OAuth2 spec): the scopes in one space-separated `scope`.
fn refresh_token_form(refresh_token: &str, server: &TokenServer) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", refresh_token);
    if let Some(s) = &server.service {
        form.append_pair("service", s);
    }
    if !server.scopes.is_empty() {
        form.append_pair("scope", &server.scopes.join(" "));
    }
    form.append_pair("client_id", OAUTH_CLIENT_ID);
    form.finish()
}

/// The token in a token server's JSON answer (`token`, or OAuth2's `access_token`) and how long
/// to use it, or what is wrong with the answer.
fn parse_token(body: &[u8]) -> std::result::Result<(Secret, Duration), &'static str> {
    #[derive(serde::Deserialize)]
    struct Token {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        access_token: Option<String>,
        #[serde(default)]
        expires_in: Option<u64>,
    }
    let t: Token = serde_json::from_slice(body)
        .map_err(|_| "token endpoint returned something other than token JSON")?;
    let token = t
        .token
        .filter(|t| !t.is_empty())
        .or(t.access_token)
        .filter(|t| !t.is_empty())
        .ok_or("token endpoint returned no token")?;
    // Renew 10% early so a token does not expire mid-request. The lifetime is the token
    // server's word, so it is clamped: an absurd `expires_in` must not overflow. Without one,
    // the spec's default of 60 seconds.
    let secs = t
        .expires_in
        .unwrap_or(60)
        .clamp(MIN_TOKEN_TTL_SECS, MAX_TOKEN_TTL_SECS);
    Ok((Secret::new(token), Duration::from_secs(secs * 9 / 10)))
}

/// The repository a request with `scopes` is for: the first scope's, when that is
/// `repository:NAME:ACTIONS` (a push that mounts from another repository lists the target
/// first). None for a request that is for no repository, such as the catalog.
fn scope_repository(scopes: &Scopes) -> Option<&str> {
    let rest = scopes.first()?.strip_prefix("repository:")?;
    rest.rsplit_once(':').map(|(name, _)| name)
}

/// Where the credentials for a registry came from, for a 401's words.
enum Had {
    /// The caller gave them.
    Given,
    /// Found in this auth file.
    From(PathBuf),
    /// None anywhere.
    Nothing,
}

/// The words a 401 error gets about credentials: whether some went out (so they are wrong, or
/// lack a permission) and from which file, or none did and which files were searched.
fn unauthorized_hint(registry: &str, had: &Had, files: &[PathBuf]) -> String {
    let refused = format!("the registry refused the credentials hoist has for {registry}");
    let none = format!("hoist has no credentials for {registry}: none were given and");
    match (had, files) {
        (Had::Given, _) => refused,
        (Had::From(file), _) => format!("{refused}, from {}", file.display()),
        (Had::Nothing, []) => format!("{none} no auth file was read"),
        (Had::Nothing, [one]) => format!("{none} {} has none", one.display()),
        (Had::Nothing, many) => {
            let names: Vec<String> = many.iter().map(|f| f.display().to_string()).collect();
            format!("{none} none of {} has any", names.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_401_says_whether_credentials_went_out_and_which_files_had_none() {
        let one = [PathBuf::from("/run/auth.json")];
        let refused = unauthorized_hint("r.example:5000", &Had::Given, &one);
        assert_eq!(
            refused,
            "the registry refused the credentials hoist has for r.example:5000"
        );
        let from = Had::From(PathBuf::from("/home/u/.config/containers/auth.json"));
        let refused = unauthorized_hint("r.example", &from, &one);
        assert!(
            refused.ends_with("for r.example, from /home/u/.config/containers/auth.json"),
            "{refused}"
        );
        let none = unauthorized_hint("r.example", &Had::Nothing, &one);
        assert!(none.contains("for r.example:"), "{none}");
        assert!(none.ends_with("/run/auth.json has none"), "{none}");
        let two = [
            PathBuf::from("/a/auth.json"),
            PathBuf::from("/b/config.json"),
        ];
        let searched = unauthorized_hint("r.example", &Had::Nothing, &two);
        assert!(
            searched.ends_with("none of /a/auth.json, /b/config.json has any"),
            "{searched}"
        );
        let unread = unauthorized_hint("r.example", &Had::Nothing, &[]);
        assert!(unread.ends_with("no auth file was read"), "{unread}");
    }

    #[tokio::test]
    async fn a_401_names_the_credentials_of_the_repository_refused() {
        let client = Client::builder().build().expect("client");
        {
            let mut auth = client.inner.auth.lock().await;
            let team = ("reg.example".to_owned(), "team/app".to_owned());
            auth.creds
                .insert(team.clone(), Some(Credentials::new("t", "pw")));
            auth.creds_file
                .insert(team, PathBuf::from("/run/auth.json"));
            auth.creds
                .insert(("reg.example".into(), "other/app".into()), None);
        }
        let hint = |repo: Option<&'static str>| {
            let client = client.clone();
            async move {
                client
                    .credentials_hint("reg.example", repo)
                    .await
                    .expect("a hint")
            }
        };
        let other = hint(Some("other/app")).await;
        assert!(
            other.starts_with("hoist has no credentials for reg.example"),
            "{other}"
        );
        let team = hint(Some("team/app")).await;
        assert!(team.ends_with("from /run/auth.json"), "{team}");
        // A 401 for no repository (a token server's) names what was found for any.
        let any = hint(None).await;
        assert!(any.ends_with("from /run/auth.json"), "{any}");
        let unknown = hint(Some("never/asked")).await;
        assert!(unknown.ends_with("from /run/auth.json"), "{unknown}");
    }

    fn server(service: Option<&str>, scopes: &[&str]) -> TokenServer {
        TokenServer {
            realm: "https://auth.example/token?account=x".into(),
            service: service.map(Into::into),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_challenges_scopes_follow_the_requests_unless_they_cover_them() {
        let requested = ["repository:a:pull,push".to_owned()];
        assert_eq!(merge_scopes(&requested, None), requested);
        assert_eq!(
            merge_scopes(
                &requested,
                Some(
                    "repository:a:pull  repository:b:pull repository:b:pull repository:a:push,pull"
                )
            ),
            ["repository:a:pull,push", "repository:b:pull"]
        );
        assert_eq!(
            merge_scopes(&requested, Some("repository:a:delete")),
            ["repository:a:pull,push", "repository:a:delete"]
        );
        let all = ["repository:a:*".to_owned()];
        assert_eq!(merge_scopes(&all, Some("repository:a:delete")), all);
        // Another resource is another scope, whatever its name shares.
        assert_eq!(
            merge_scopes(&requested, Some("repository:a/b:pull")).len(),
            2
        );
        assert_eq!(
            merge_scopes(&[], Some("registry:catalog:*")),
            ["registry:catalog:*"]
        );
        assert!(covers(
            "repository:localhost:5000/a:pull,push",
            "repository:localhost:5000/a:push"
        ));
        assert!(!covers("repository:a:pull", "junk"));
    }

    #[test]
    fn a_token_get_keeps_the_realms_query_and_names_each_scope() {
        let realm = Url::parse("https://auth.example/token?account=x").expect("url");
        let url = token_get_url(
            realm,
            &server(Some("reg"), &["repository:a:pull", "repository:b:pull"]),
        );
        assert_eq!(
            url.as_str(),
            "https://auth.example/token?account=x&service=reg&scope=repository%3Aa%3Apull&scope=repository%3Ab%3Apull"
        );
    }

    #[test]
    fn a_refresh_token_grant_is_one_form_with_the_scopes_space_separated() {
        let form = refresh_token_form(
            "r&t=1 +",
            &server(
                Some("reg.example"),
                &["repository:a:pull", "repository:b:pull"],
            ),
        );
        assert_eq!(
            form,
            "grant_type=refresh_token&refresh_token=r%26t%3D1+%2B&service=reg.example\
             &scope=repository%3Aa%3Apull+repository%3Ab%3Apull&client_id=hoist"
        );
        assert_eq!(
            refresh_token_form("t", &server(None, &[])),
            "grant_type=refresh_token&refresh_token=t&client_id=hoist"
        );
    }

    #[test]
    fn a_token_answer_gives_the_token_and_a_clamped_lifetime() {
        let (t, ttl) = parse_token(br#"{"token":"a","expires_in":300}"#).expect("token");
        assert_eq!((t.expose(), ttl), ("a", Duration::from_secs(270)));
        let (t, ttl) = parse_token(br#"{"access_token":"b"}"#).expect("OAuth2");
        assert_eq!((t.expose(), ttl), ("b", Duration::from_secs(54)));
        // An empty `token` beside an `access_token` is no token.
        let (t, _) = parse_token(br#"{"token":"","access_token":"c"}"#).expect("OAuth2");
        assert_eq!(t.expose(), "c");
        let (_, ttl) = parse_token(br#"{"token":"d","expires_in":18446744073709551615}"#)
            .expect("huge lifetime");
        assert_eq!(ttl, Duration::from_secs(MAX_TOKEN_TTL_SECS * 9 / 10));
        let (_, ttl) = parse_token(br#"{"token":"d","expires_in":0}"#).expect("no lifetime");
        assert_eq!(ttl, Duration::from_secs(9));
        assert!(parse_token(br#"{"token":""}"#).is_err());
        assert!(parse_token(b"<html>").is_err());
    }

    #[test]
    fn a_request_is_for_the_repository_of_its_first_scope() {
        let scopes = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let push = scopes(&["repository:team/app:pull,push", "repository:base/os:pull"]);
        assert_eq!(scope_repository(&push), Some("team/app"));
        assert_eq!(scope_repository(&scopes(&["repository:a:pull"])), Some("a"));
        assert_eq!(scope_repository(&scopes(&["registry:catalog:*"])), None);
        assert_eq!(scope_repository(&[]), None);
    }

    #[tokio::test]
    async fn an_anonymous_registry_gets_no_credentials_whatever_is_configured() {
        let client = Client::builder()
            .credentials(Credentials::new("u", "p"))
            .registry_credentials("src.example", Credentials::new("s", "q"))
            .registry_auth_file("src.example", "/src.json")
            .anonymous_registry("SRC.example")
            .build()
            .expect("client");
        let scopes = vec!["repository:team/app:pull".to_owned()];
        let creds = client.credentials_for("src.example", &scopes).await;
        assert_eq!(creds.expect("no lookup"), None);
        assert!(client.auth_files("src.example").is_empty());
        let other = client.credentials_for("dest.example", &scopes).await;
        assert_eq!(other.expect("given"), Some(Credentials::new("u", "p")));
    }

    #[test]
    fn a_registry_named_with_its_own_auth_file_reads_that_file_alone() {
        let files = |builder: crate::ClientBuilder, registry: &str| {
            builder.build().expect("client").auth_files(registry)
        };
        let own = || {
            Client::builder()
                .registry_auth_file("src.example:5000", "/src.json")
                .registry_auth_file("DEST.example", "/dest.json")
        };
        assert_eq!(
            files(own(), "src.example:5000"),
            [PathBuf::from("/src.json")]
        );
        assert_eq!(files(own(), "dest.example"), [PathBuf::from("/dest.json")]);
        assert_eq!(
            files(own(), "other.example"),
            credentials::default_auth_files()
        );
        let with_general = own().docker_config("/all.json");
        assert_eq!(
            files(with_general.clone(), "src.example:5000"),
            [PathBuf::from("/src.json")]
        );
        assert_eq!(
            files(with_general, "other.example"),
            [PathBuf::from("/all.json")]
        );
        assert!(files(own().no_docker_config(), "src.example:5000").is_empty());
    }
}

//! The operations files speak about real metrics: every metric name that the Grafana dashboard
//! (`docs/dashboards/secureconnect.json`) and the Prometheus alert rules
//! (`docs/alerts/secureconnect-rules.yaml`) query is served by `/metrics`.
//!
//! The server registers metric families lazily (a labelled family has no line at all until its
//! first sample), so the test first makes one of each happen: requests, a failed login, a
//! message with its notification and a Web Push to a local receiver, an AI chat through the
//! stub provider and one over the daily AI budget (a rate-limit rejection). Then it reads the
//! metric names out of the PromQL of both files and looks each one up in what `/metrics`
//! answered.

use crate::ai_stub::AiStub;
use crate::common::*;
use crate::push_servers::WebPushReceiver;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const AI_KEY: &str = "sk-ops-files-key-0123456789";

/// Series Prometheus adds to every scrape itself; the server cannot serve them.
const PROMETHEUS_OWN: [&str; 1] = ["up"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

const DASHBOARD: &str = "docs/dashboards/secureconnect.json";
const ALERTS: &str = "docs/alerts/secureconnect-rules.yaml";

/// The PromQL queries of a Grafana dashboard: every panel target's `expr` (rows nest their
/// panels when collapsed) and the queries of the templating variables.
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    fn panels(list: &Value, out: &mut Vec<String>) {
        for p in list.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push(e.to_string());
                }
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if v["type"] != "query" {
            continue;
        }
        let q = v["query"]["query"].as_str().or(v["query"].as_str());
        if let Some(q) = q {
            out.push(q.to_string());
        }
    }
    out
}

/// The `expr:` values of a Prometheus rule file: on one line (`expr: up == 0`, quoted or not),
/// or as a block scalar (`expr: |` / `>-`, the more indented lines after it).
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        i += 1;
        let Some(rest) = trimmed
            .strip_prefix("- expr:")
            .or_else(|| trimmed.strip_prefix("expr:"))
        else {
            continue;
        };
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let indent = line.len() - trimmed.len();
            let mut block = Vec::new();
            while i < lines.len() {
                let l = lines[i];
                let t = l.trim_start();
                if !t.is_empty() && l.len() - t.len() <= indent {
                    break;
                }
                block.push(t);
                i += 1;
            }
            out.push(block.join(" "));
        } else {
            let unquoted = if rest.len() >= 2
                && ((rest.starts_with('"') && rest.ends_with('"'))
                    || (rest.starts_with('\'') && rest.ends_with('\'')))
            {
                rest[1..rest.len() - 1].to_string()
            } else {
                rest.to_string()
            };
            out.push(unquoted);
        }
    }
    out
}

/// PromQL keywords and aggregation operators (`sum by (le) (…)` puts no `(` right after
/// `sum`). After the grouping keywords a `( label, … )` list follows, which holds label
/// names, not metrics.
const KEYWORDS: [&str; 28] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
];
const GROUPING: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression selects: identifiers outside strings, label matchers
/// `{…}`, ranges `[…]` and grouping label lists, that are neither keywords, nor functions or
/// aggregations (followed by `(`), nor numbers and durations. Grafana's `label_values(metric,
/// label)` counts its metric only. Template variables (`$job`, `$__rate_interval`) only occur
/// inside matchers and ranges here, which are skipped.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let expr = match expr.trim().strip_prefix("label_values(") {
        Some(args) => args.split(',').next().unwrap_or_default().to_string(),
        None => expr.to_string(),
    };
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_next_paren_list = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                i += 1;
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' || chars[i] == '\'' {
                        let q = chars[i];
                        i += 1;
                        while i < chars.len() && chars[i] != q {
                            if chars[i] == '\\' {
                                i += 1;
                            }
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if skip_next_paren_list => {
                skip_next_paren_list = false;
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
            }
            c if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                // A number or a duration (5m, 1h30m, 0.95, 1e3).
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                let is_call = chars.get(j) == Some(&'(');
                let lower = word.to_ascii_lowercase();
                if GROUPING.contains(&lower.as_str()) {
                    skip_next_paren_list = true;
                } else if KEYWORDS.contains(&lower.as_str()) || is_call {
                    // A keyword, or a function / aggregation operator.
                } else {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// What one `/metrics` answer exposes: the name of every sample line, and the families its
/// `# TYPE` lines declare (a histogram family `x` stands for `x_bucket`, `x_sum`, `x_count`).
struct Exposed {
    samples: BTreeSet<String>,
    histograms: BTreeSet<String>,
}

impl Exposed {
    fn parse(text: &str) -> Exposed {
        let mut samples = BTreeSet::new();
        let mut histograms = BTreeSet::new();
        for line in text.lines() {
            if let Some(decl) = line.strip_prefix("# TYPE ") {
                let mut it = decl.split_whitespace();
                if let (Some(name), Some("histogram")) = (it.next(), it.next()) {
                    histograms.insert(name.to_string());
                }
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                samples.insert(line[..end].to_string());
            }
        }
        Exposed {
            samples,
            histograms,
        }
    }

    fn has(&self, name: &str) -> bool {
        self.samples.contains(name)
            || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
                name.strip_suffix(suffix)
                    .is_some_and(|base| self.histograms.contains(base))
            })
    }
}

/// Polls `/metrics` until every name in `wanted` has a sample (the push worker and the
/// notification dispatcher record theirs a moment after the request that caused them).
async fn metrics_with(app: &TestApp, wanted: &[&str]) -> String {
    let started = Instant::now();
    loop {
        let text = app.metrics().await;
        let exposed = Exposed::parse(&text);
        let missing: Vec<&&str> = wanted.iter().filter(|w| !exposed.has(w)).collect();
        if missing.is_empty() {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the traffic did not produce {missing:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn promql_names_are_read_out_of_expressions() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{route!~"/v1/ai/.+",job=~"$job"}[$__rate_interval])))"#
        ),
        ["a_bucket"]
    );
    assert_eq!(
        names("sum without (instance) (b) / on (job) group_left (x) c offset 10m > 0.5 and d"),
        ["b", "c", "d"]
    );
    assert_eq!(
        names("max by (job) (delta(g[30m])) > 5 and topk(3, h)"),
        ["g", "h"]
    );
    assert_eq!(
        names(r#"label_values(e_total{job=~"$job"}, instance)"#),
        ["e_total"]
    );
    assert_eq!(names("max_over_time(f[5m]) < 1 and up == 0"), ["f", "up"]);
    assert_eq!(
        rule_exprs(
            "  - alert: A\n    expr: x > 1\n    for: 5m\n  - alert: B\n    expr: |\n      y\n        / z\n    labels: {}\n      - expr: \"q\"\n"
        ),
        ["x > 1", "y / z", "q"]
    );
}

#[tokio::test]
async fn dashboard_and_alert_rules_use_only_served_metrics() {
    let root = repo_root();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join(DASHBOARD)).expect("the dashboard file"),
    )
    .expect("the dashboard is JSON");
    let rules = std::fs::read_to_string(root.join(ALERTS)).expect("the alert rules file");

    let mut referenced: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let dashboard_exprs = dashboard_queries(&dashboard);
    let alert_exprs = rule_exprs(&rules);
    assert!(
        dashboard_exprs.len() >= 20,
        "{} dashboard queries",
        dashboard_exprs.len()
    );
    assert!(
        alert_exprs.len() >= 15,
        "{} alert expressions",
        alert_exprs.len()
    );
    for (file, exprs) in [(DASHBOARD, &dashboard_exprs), (ALERTS, &alert_exprs)] {
        for e in exprs.iter() {
            let names = metric_names(e);
            assert!(!names.is_empty(), "{file}: no metric in `{e}`");
            for n in names {
                referenced.entry(n).or_default().insert(file);
            }
        }
    }
    // Both files watch the deployment broadly, not one corner of it.
    assert!(referenced.len() >= 20, "{referenced:?}");

    // Traffic that creates every lazily registered family.
    let stub = AiStub::start(Some(AI_KEY)).await;
    let app = TestApp::spawn_with(|c| {
        c.ai_base_url = Some(stub.base_url().to_string());
        c.ai_api_key = Some(sc_core::secret::Secret::new(AI_KEY));
        c.ai_model = Some("stub-chat".into());
        c.ai_timeout_seconds = 5;
        c.ai_requests_per_user_per_day = 1;
        c.push_allow_insecure_endpoints = true;
    })
    .await;
    let a = app.register("opsfilesa").await;
    let b = app.register("opsfilesb").await;
    app.post(
        "/v1/auth/login",
        None,
        json!({"username": "opsfilesa", "password": "not-the-password-9"}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");

    let rx = WebPushReceiver::start().await;
    let key = app.get("/v1/push/vapid-public-key", None).await;
    rx.set_vapid_key(key.assert_ok(200)["public_key"].as_str().unwrap());
    let (endpoint, p256dh, auth) = rx.subscription();
    app.post(
        "/v1/push/subscriptions",
        Some(&b.access),
        json!({"kind": "webpush", "endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}),
    )
    .await
    .assert_ok(201);
    let conv = app
        .post(
            "/v1/conversations",
            Some(&a.access),
            json!({"kind": "direct", "member_ids": [b.id]}),
        )
        .await
        .assert_ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.send_text(&a, &conv, "ops-files-1", "hello")
        .await
        .assert_ok(201);
    rx.wait_for(1, Duration::from_secs(15)).await;

    app.call(
        Method::PATCH,
        "/v1/ai/settings",
        Some(&a.access),
        json!({"enabled": true}),
    )
    .await
    .assert_ok(200);
    let chat = json!({"messages": [{"role": "user", "content": "Say hello."}]});
    app.post("/v1/ai/chat", Some(&a.access), chat.clone())
        .await
        .assert_ok(200);
    app.post("/v1/ai/chat", Some(&a.access), chat)
        .await
        .assert_error(429, "RATE_LIMITED");

    let text = metrics_with(
        &app,
        &[
            "secureconnect_http_requests_total",
            "secureconnect_http_request_duration_seconds_bucket",
            "secureconnect_auth_logins_failed_total",
            "secureconnect_rate_limit_rejections_total",
            "secureconnect_notifications_dispatched_total",
            "secureconnect_push_outcomes_total",
            "secureconnect_ai_requests_total",
            "secureconnect_ai_tokens_total",
            "secureconnect_ai_provider_seconds_bucket",
        ],
    )
    .await;
    let exposed = Exposed::parse(&text);

    let missing: Vec<String> = referenced
        .iter()
        .filter(|(name, _)| !exposed.has(name) && !PROMETHEUS_OWN.contains(&name.as_str()))
        .map(|(name, files)| format!("{name} (in {files:?})"))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics queried by the operations files but not served by /metrics:\n  {}\n\nserved:\n{}",
        missing.join("\n  "),
        exposed
            .samples
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    app.stop().await;
}

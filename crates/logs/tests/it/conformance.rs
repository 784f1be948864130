//! LogQL conformance: queries over a fixed corpus with results written from
//! Loki's documented semantics (each case names the doc section it follows; the
//! corpus and most cases are those of `logql.md` §8 in the project's research
//! notes, from Loki's docs and its `logqltest` files). Times are offsets in
//! seconds from a base hour; the store runs with Loki's `service_name` and
//! `detected_level` discovery off, so results show only the corpus' labels.

use sextant_logs::logql::{QueryParams, QueryResult, evaluate, parse};
use sextant_logs::store::Limits;
use sextant_logs::{Direction, Entry, LogStore, LogStoreOptions, PushStream};
use sextant_model::Labels;

const S: i64 = 1_000_000_000;

/// Stream labels, line, second.
type CorpusEntry = (&'static [(&'static str, &'static str)], &'static str, i64);

fn corpus() -> Vec<CorpusEntry> {
    vec![
        (
            &[("app", "api"), ("env", "prod")],
            "level=info method=GET path=/ status=200 latency=250ms size=1KiB",
            10,
        ),
        (
            &[("app", "api"), ("env", "prod")],
            "level=error method=POST path=/login status=500 latency=2s size=3KiB",
            20,
        ),
        (
            &[("app", "api"), ("env", "prod")],
            "level=info method=GET path=/health status=200 latency=500ms size=2KiB",
            30,
        ),
        (
            &[("app", "api"), ("env", "dev")],
            "level=warn method=GET path=/ status=404 latency=125ms size=200B",
            25,
        ),
        (
            &[("app", "web"), ("env", "prod")],
            r#"{"level":"info","req":{"method":"GET","path":"/"},"status":200,"dur":"0.25"}"#,
            15,
        ),
        (
            &[("app", "web"), ("env", "prod")],
            r#"{"level":"error","req":{"method":"POST","path":"/x"},"status":503,"dur":"1.5"}"#,
            35,
        ),
        (&[("app", "web"), ("env", "prod")], "not json at all", 45),
        (
            &[("app", "pack")],
            r#"{"_entry":"level=debug msg=hi","pod":"p-1","num":5}"#,
            40,
        ),
        (&[("app", "lf")], r#"good=1 bad="unterminated"#, 50),
        (&[("app", "color")], "\x1b[31mERROR\x1b[0m: boom", 55),
    ]
}

struct Fixture {
    store: LogStore,
    base: i64,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = LogStoreOptions::new(dir.path());
    opts.limits = Limits {
        discover_service_name: false,
        discover_log_levels: false,
        ..Limits::default()
    };
    let (store, _) = LogStore::open(opts).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let base = (now / (3600 * S) - 2) * 3600 * S;
    let streams = corpus()
        .into_iter()
        .map(|(labels, line, t)| PushStream {
            labels: Labels::from_pairs(labels.iter().copied()).unwrap(),
            entries: vec![Entry {
                ts: base + t * S,
                line: line.into(),
                metadata: Vec::new(),
            }],
        })
        .collect();
    store.push_blocking(streams).unwrap();
    store.flush().unwrap();
    Fixture { store, base, _dir: dir }
}

fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

fn render(f: &Fixture, r: &QueryResult, lines: bool) -> String {
    match r {
        QueryResult::Streams(streams) => streams
            .iter()
            .map(|s| {
                let entries: Vec<String> = s
                    .entries
                    .iter()
                    .map(|e| {
                        let t = (e.ts - f.base) / S;
                        if lines {
                            format!("{t}s {:?}", e.line)
                        } else {
                            format!("{t}s")
                        }
                    })
                    .collect();
                format!("{} {}", s.labels, entries.join(" "))
            })
            .collect::<Vec<_>>()
            .join(" · "),
        QueryResult::Vector(_, v) => v
            .iter()
            .map(|(l, x)| format!("{l} {}", fmt_value(*x)))
            .collect::<Vec<_>>()
            .join(" · "),
        QueryResult::Matrix(m) => m
            .iter()
            .map(|(l, pts)| {
                let vals: Vec<String> = pts
                    .iter()
                    .map(|(t, x)| format!("{}s={}", (t * 1_000_000 - f.base) / S, fmt_value(*x)))
                    .collect();
                format!("{l} {}", vals.join(" "))
            })
            .collect::<Vec<_>>()
            .join(" · "),
        QueryResult::Scalar(_, x) => fmt_value(*x),
    }
}

enum Kind {
    /// A log query over [0s, 100s), backward, limit 100.
    Logs,
    /// The same, showing lines.
    Lines,
    /// With a limit and direction.
    LogsWith(usize, Direction),
    /// An instant query at 60s.
    Instant,
    /// An instant query at the given second.
    InstantAt(i64),
    /// A range query: start, end, step in seconds.
    Range(i64, i64, i64),
}

fn run(f: &Fixture, q: &str, kind: &Kind) -> String {
    let expr = match parse(q) {
        Ok(e) => e,
        Err(e) => return format!("error: {e}"),
    };
    let b = f.base;
    let p = match kind {
        Kind::Logs | Kind::Lines => QueryParams {
            start: b,
            end: b + 100 * S,
            step: S,
            limit: 100,
            direction: Direction::Backward,
        },
        Kind::LogsWith(limit, direction) => QueryParams {
            start: b,
            end: b + 100 * S,
            step: S,
            limit: *limit,
            direction: *direction,
        },
        Kind::Instant => QueryParams {
            start: b + 60 * S,
            end: b + 60 * S,
            step: 0,
            limit: 100,
            direction: Direction::Backward,
        },
        Kind::InstantAt(t) => QueryParams {
            start: b + t * S,
            end: b + t * S,
            step: 0,
            limit: 100,
            direction: Direction::Backward,
        },
        Kind::Range(s, e, st) => QueryParams {
            start: b + s * S,
            end: b + e * S,
            step: st * S,
            limit: 100,
            direction: Direction::Backward,
        },
    };
    match evaluate(&f.store, &expr, &p) {
        Ok((r, _)) => render(f, &r, matches!(kind, Kind::Lines)),
        Err(e) => format!("error: {e}"),
    }
}

const API_PROD: &str = r#"{app="api", env="prod"}"#;
const API_DEV: &str = r#"{app="api", env="dev"}"#;

#[test]
fn logql_conformance() {
    let f = fixture();
    use Kind::*;
    let json_err = "pipeline error: 'JSONParserErr' for series: '{__error__=\"JSONParserErr\", __error_details__=\"Value looks like object, but can't find closing '}' symbol\", app=\"web\", env=\"prod\"}'.\nUse a label filter to intentionally skip this error. (e.g | __error__!=\"JSONParserErr\").\nTo skip all potential errors you can match empty errors.(e.g __error__=\"\")\nThe label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n";
    let cases: Vec<(&str, &str, Kind, String)> = vec![
        // Log queries (docs: log_queries, query_reference; HTTP API "most recent first").
        ("L01", r#"{app="api"}"#, Logs, format!("{API_DEV} 25s · {API_PROD} 30s 20s 10s")),
        ("L02", r#"{app="api"}"#, LogsWith(2, Direction::Backward), format!("{API_DEV} 25s · {API_PROD} 30s")),
        ("L03", r#"{app="api"}"#, LogsWith(2, Direction::Forward), format!("{API_PROD} 10s 20s")),
        ("L04", r#"{app="api"} |= "GET""#, Logs, format!("{API_DEV} 25s · {API_PROD} 30s 10s")),
        ("L05", r#"{app="api"} != "GET""#, Logs, format!("{API_PROD} 20s")),
        ("L06", r#"{app="api"} |~ `status=[45]\d\d`"#, Logs, format!("{API_DEV} 25s · {API_PROD} 20s")),
        ("L06b", r#"{app="api"} |~ "status=[45]\\d\\d""#, Logs, format!("{API_DEV} 25s · {API_PROD} 20s")),
        ("L07", r#"{app="api"} |~ "(?i)LEVEL=ERROR""#, Logs, format!("{API_PROD} 20s")),
        ("L07b", r#"{app="api"} |= "LEVEL=ERROR""#, Logs, String::new()),
        ("L08", r#"{app="api"} |= "POST" or "404""#, Logs, format!("{API_DEV} 25s · {API_PROD} 20s")),
        ("L09", r#"{app="api"} != "GET" or "POST""#, Logs, String::new()),
        ("L10", r#"{app="api"} |> "level=<_> method=GET <_>""#, Logs, format!("{API_DEV} 25s · {API_PROD} 30s 10s")),
        (
            "L11",
            r#"{app="api"} | logfmt | status >= 400"#,
            Logs,
            r#"{app="api", env="dev", latency="125ms", level="warn", method="GET", path="/", size="200B", status="404"} 25s · {app="api", env="prod", latency="2s", level="error", method="POST", path="/login", size="3KiB", status="500"} 20s"#.into(),
        ),
        ("L12", r#"{app="api"} | logfmt | latency > 300ms | keep app, latency"#, Logs, r#"{app="api", latency="2s"} 20s · {app="api", latency="500ms"} 30s"#.into()),
        ("L13", r#"{app="api"} | logfmt | size > 2KB | keep size"#, Logs, r#"{size="2KiB"} 30s · {size="3KiB"} 20s"#.into()),
        ("L14", r#"{app="api"} | logfmt | level="info" or status=404 and method="GET" | keep level"#, Logs, r#"{level="info"} 30s 10s · {level="warn"} 25s"#.into()),
        ("L15", r#"{app="api"} | logfmt | status=404 and method="GET" or level="error" | keep level"#, Logs, r#"{level="error"} 20s · {level="warn"} 25s"#.into()),
        (
            "L17",
            r#"{app="api", env="dev"} | logfmt | line_format "{{.method}} {{.path}} {{.status}}""#,
            Lines,
            r#"{app="api", env="dev", latency="125ms", level="warn", method="GET", path="/", size="200B", status="404"} 25s "GET / 404""#.into(),
        ),
        ("L18", r#"{app="api", env="dev"} | logfmt | label_format code=status, lvl=`{{ .level | upper }}` | keep app, code, lvl"#, Logs, r#"{app="api", code="404", lvl="WARN"} 25s"#.into()),
        ("L19", r#"{app="api", env="dev"} | logfmt | drop method, size, latency, path, level"#, Logs, r#"{app="api", env="dev", status="404"} 25s"#.into()),
        ("L20", r#"{app="api", env="dev"} | pattern "level=<level> <_> status=<code> <_>""#, Logs, r#"{app="api", code="404", env="dev", level="warn"} 25s"#.into()),
        ("L21", r#"{app="api", env="dev"} | regexp "status=(?P<code>\\d+) latency=(?P<lat>\\S+)""#, Logs, r#"{app="api", code="404", env="dev", lat="125ms"} 25s"#.into()),
        (
            "L22",
            r#"{app="web"} | json"#,
            Logs,
            r#"{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol", app="web", env="prod"} 45s · {app="web", dur="0.25", env="prod", level="info", req_method="GET", req_path="/", status="200"} 15s · {app="web", dur="1.5", env="prod", level="error", req_method="POST", req_path="/x", status="503"} 35s"#.into(),
        ),
        (
            "L23",
            r#"{app="web"} | json | __error__="""#,
            Logs,
            r#"{app="web", dur="0.25", env="prod", level="info", req_method="GET", req_path="/", status="200"} 15s · {app="web", dur="1.5", env="prod", level="error", req_method="POST", req_path="/x", status="503"} 35s"#.into(),
        ),
        (
            "L24",
            r#"{app="web"} | json | drop __error__, __error_details__"#,
            Logs,
            r#"{app="web", dur="0.25", env="prod", level="info", req_method="GET", req_path="/", status="200"} 15s · {app="web", dur="1.5", env="prod", level="error", req_method="POST", req_path="/x", status="503"} 35s · {app="web", env="prod"} 45s"#.into(),
        ),
        ("L26", r#"{app="web"} | json m="req.method", s="status""#, Logs, r#"{__error__="JSONParserErr", app="web", env="prod"} 45s · {app="web", env="prod", m="GET", s="200"} 15s · {app="web", env="prod", m="POST", s="503"} 35s"#.into()),
        ("L27", r#"{app="pack"} | unpack"#, Lines, r#"{app="pack", pod="p-1"} 40s "level=debug msg=hi""#.into()),
        ("L28", r#"{app="pack"} | unpack | logfmt"#, Lines, r#"{app="pack", level="debug", msg="hi", pod="p-1"} 40s "level=debug msg=hi""#.into()),
        ("L29", r#"{app="api", env="dev"} | line_format `{{ __line__ | count "=" }}`"#, Lines, format!("{API_DEV} 25s \"6\"")),
        ("L31", r#"{app="api", env="dev"} | logfmt | path > 1 | keep app"#, Logs, r#"{__error__="LabelFilterErr", __error_details__="strconv.ParseFloat: parsing \"/\": invalid syntax", app="api"} 25s"#.into()),
        ("L32", r#"{app="api", env="dev"} | logfmt | missing > 1"#, Logs, String::new()),
        ("L33", r#"{app="api", env="dev"} | logfmt | missing != "x" | keep app"#, Logs, r#"{app="api"} 25s"#.into()),
        ("L34", r#"{app="lf"} | logfmt"#, Logs, r#"{app="lf", good="1"} 50s"#.into()),
        ("L35", r#"{app="lf"} | logfmt --strict"#, Logs, r#"{__error__="LogfmtParserErr", __error_details__="logfmt syntax error at pos 25 : unterminated quoted value", app="lf", good="1"} 50s"#.into()),
        ("L36", r#"{app="color"} | decolorize"#, Lines, r#"{app="color"} 55s "ERROR: boom""#.into()),
        // Metric queries, instant at 60s (docs: metric_queries; query_reference).
        ("M01", r#"count_over_time({app="api"}[1m])"#, Instant, format!("{API_DEV} 1 · {API_PROD} 3")),
        ("M02", r#"rate({app="api"}[1m])"#, Instant, format!("{API_DEV} 0.016666666666666666 · {API_PROD} 0.05")),
        ("M03", r#"bytes_over_time({app="api", env="prod"}[1m])"#, Instant, format!("{API_PROD} 199")),
        ("M04", r#"bytes_rate({app="api", env="prod"}[1m])"#, Instant, format!("{API_PROD} 3.316666666666667")),
        ("M05", r#"bytes_over_time({app="api", env="prod"} | logfmt | line_format "{{.method}} {{.path}} {{.status}}" | keep app [1m])"#, Instant, r#"{app="api"} 39"#.into()),
        ("M06", r#"sum by (env) (count_over_time({app=~"api|web"}[1m]))"#, Instant, r#"{env="dev"} 1 · {env="prod"} 6"#.into()),
        ("M07", r#"sum(count_over_time({app="api"}[1m])) by (env)"#, Instant, r#"{env="dev"} 1 · {env="prod"} 3"#.into()),
        ("M08", r#"count_over_time({app="web"} | json [1m])"#, Instant, format!("error: {json_err}")),
        ("M10", r#"sum by (level) (count_over_time({app="web"} | json | __error__="" [1m]))"#, Instant, r#"{level="error"} 1 · {level="info"} 1"#.into()),
        ("M11", r#"sum by (env) (sum_over_time({app="api"} | logfmt | unwrap duration(latency) [1m]))"#, Instant, r#"{env="dev"} 0.125 · {env="prod"} 2.75"#.into()),
        ("M12", r#"max_over_time({app="api"} | logfmt | unwrap duration(latency) [1m]) by (env)"#, Instant, r#"{env="dev"} 0.125 · {env="prod"} 2"#.into()),
        ("M13", r#"avg_over_time({app="api"} | logfmt | unwrap bytes(size) [1m]) by (env)"#, Instant, r#"{env="dev"} 200 · {env="prod"} 2048"#.into()),
        ("M14", r#"quantile_over_time(0.5, {app="api"} | logfmt | unwrap duration(latency) [1m]) by (env)"#, Instant, r#"{env="dev"} 0.125 · {env="prod"} 0.5"#.into()),
        ("M15", r#"quantile_over_time(0.25, {app="api"} | logfmt | unwrap duration(latency) [1m]) by (env)"#, Instant, r#"{env="dev"} 0.125 · {env="prod"} 0.375"#.into()),
        ("M16", r#"stdvar_over_time({app="api"} | logfmt | unwrap bytes(size) [1m]) by (env)"#, Instant, r#"{env="dev"} 0 · {env="prod"} 699050.6666666666"#.into()),
        ("M17", r#"first_over_time({app="api"} | logfmt | unwrap duration(latency) [1m]) by (env)"#, Instant, r#"{env="dev"} 0.125 · {env="prod"} 0.25"#.into()),
        ("M17b", r#"last_over_time({app="api"} | logfmt | unwrap duration(latency) [1m]) by (env)"#, Instant, r#"{env="dev"} 0.125 · {env="prod"} 0.5"#.into()),
        ("M19", r#"sum_over_time({app="api"} | logfmt | unwrap latency | __error__="" [1m])"#, Instant, String::new()),
        ("M20", r#"min_over_time({app="api", env="dev"} | logfmt | unwrap status [1m])"#, Instant, r#"{app="api", env="dev", latency="125ms", level="warn", method="GET", path="/", size="200B"} 404"#.into()),
        ("M21", r#"sum by (level) (sum_over_time({app="web"} | json | unwrap dur [1m]))"#, Instant, r#"{level="error"} 1.5 · {level="info"} 0.25"#.into()),
        ("M24", r#"topk(1, count_over_time({app="api"}[1m]))"#, Instant, format!("{API_PROD} 3")),
        ("M24b", r#"bottomk(1, count_over_time({app="api"}[1m]))"#, Instant, format!("{API_DEV} 1")),
        ("M25", r#"sum(count_over_time({app="api"}[1m])) / sum(count_over_time({env="prod"}[1m]))"#, Instant, "{} 0.6666666666666666".into()),
        ("M26", r#"count_over_time({app="api"}[1m]) > 1"#, Instant, format!("{API_PROD} 3")),
        ("M26b", r#"count_over_time({app="api"}[1m]) > bool 1"#, Instant, format!("{API_DEV} 0 · {API_PROD} 1")),
        ("M27", r#"count_over_time({app="api"}[1m]) + on (app) group_left sum by (app) (count_over_time({app="api"}[1m]))"#, Instant, format!("{API_DEV} 5 · {API_PROD} 7")),
        ("M28", r#"sum by (app) (count_over_time({app=~"api|web"}[1m])) and sum by (app) (count_over_time({app="api"}[1m]))"#, Instant, r#"{app="api"} 4"#.into()),
        ("M28b", r#"sum by (app) (count_over_time({app=~"api|web"}[1m])) unless sum by (app) (count_over_time({app="api"}[1m]))"#, Instant, r#"{app="web"} 3"#.into()),
        ("M29", r#"sum(count_over_time({app="nope"}[1m])) or vector(0)"#, Instant, "{} 0".into()),
        ("M30", r#"absent_over_time({app="nope", env=~"p.*"}[1m])"#, Instant, r#"{app="nope"} 1"#.into()),
        ("M30b", r#"absent_over_time({app="api"}[1m])"#, Instant, String::new()),
        ("M31", r#"label_replace(count_over_time({app="api", env="dev"}[1m]), "short", "$1", "env", "(d).*")"#, Instant, r#"{app="api", env="dev", short="d"} 1"#.into()),
        ("M32a", "1 + 2 * 3", Instant, "7".into()),
        ("M32b", "2 ^ 3 ^ 2", Instant, "512".into()),
        ("M32d", "10 / 0", Instant, "NaN".into()),
        ("M32f", "7 > bool 2", Instant, "1".into()),
        ("M33", "vector(1) + vector(2)", Instant, "{} 3".into()),
        ("M34", r#"sort_desc(sum by (app) (count_over_time({app=~"api|web|pack"}[1m])))"#, Instant, r#"{app="api"} 4 · {app="web"} 3 · {app="pack"} 1"#.into()),
        ("M35b", r#"count_over_time({app="lf"} | logfmt [1m])"#, Instant, r#"{app="lf", good="1"} 1"#.into()),
        ("M36", r#"bytes_over_time({app="color"}[1m])"#, Instant, r#"{app="color"} 20"#.into()),
        ("M36b", r#"bytes_over_time({app="color"} | decolorize [1m])"#, Instant, r#"{app="color"} 11"#.into()),
        // Windows, steps and offsets (docs: metric_queries "Range Vector aggregation", "Offset modifier").
        ("W01", r#"count_over_time({app="api"}[20s])"#, Range(20, 60, 20), format!("{API_DEV} 40s=1 · {API_PROD} 20s=2 40s=1")),
        ("W02", r#"count_over_time({app="api"}[5s])"#, Range(10, 30, 10), format!("{API_PROD} 10s=1 20s=1 30s=1")),
        ("W03", r#"count_over_time({app="api"}[20s] offset 20s)"#, Instant, format!("{API_DEV} 1 · {API_PROD} 1")),
        ("W04", r#"count_over_time({app="api"}[10s])"#, InstantAt(20), format!("{API_PROD} 1")),
        ("W05", "vector(1)", Range(0, 20, 10), "{} 0s=1 10s=1 20s=1".into()),
        ("W06", "1+1", Range(0, 20, 10), "{} 0s=2 10s=2 20s=2".into()),
        ("W07", r#"rate({app="api"}[1m])"#, Range(20, 60, 20), format!("{API_DEV} 40s=0.016666666666666666 60s=0.016666666666666666 · {API_PROD} 20s=0.03333333333333333 40s=0.05 60s=0.05")),
        // Needle search through the index: substrings inside and across words.
        ("N01", r#"{app=~".+"} |= "alth sta""#, Logs, format!("{API_PROD} 30s")),
        ("N02", r#"{app=~".+"} |= "ERR""#, Logs, r#"{app="color"} 55s"#.into()),
        ("N03", r#"{app=~".+"} |= "json at""#, Logs, r#"{app="web", env="prod"} 45s"#.into()),
        // Errors (docs: query_reference; Loki's parser tests).
        ("E01", r#"{app=~".*"}"#, Logs, "error: parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will".into()),
        ("E02", r#"sum_over_time({app="a"}[5m])"#, Instant, "error: parse error : invalid aggregation sum_over_time without unwrap".into()),
    ];
    let mut failures = Vec::new();
    for (id, q, kind, want) in &cases {
        let got = run(&f, q, kind);
        if &got != want {
            failures.push(format!("{id} {q}\n   want: {want}\n    got: {got}"));
        }
    }
    #[allow(clippy::print_stdout)] // the figure the test suite reports
    {
        println!("logql conformance: {}/{}", cases.len() - failures.len(), cases.len());
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

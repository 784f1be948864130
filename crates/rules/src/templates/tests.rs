//! Prometheus 2.42's template test vectors (`template/template_test.go`) and outputs
//! captured from the 2.42 binary (`promtool test rules` and a running server).

use std::sync::Arc;

use sextant_model::Labels;
use sextant_template::{Template, Value};

use super::*;

fn query() -> QueryFn {
    Arc::new(|q: &str| {
        let l = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied()).unwrap();
        Ok(match q {
            "1.5" => vec![(Labels::empty(), 1.5)],
            "metric{instance='a'}" => vec![(l(&[("__name__", "metric"), ("instance", "a")]), 11.0)],
            "metric{__value__='a'}" => vec![(l(&[("__name__", "metric"), ("__value__", "a")]), 11.0)],
            "metric" => vec![
                (l(&[("__name__", "metric"), ("instance", "b")]), 21.0),
                (l(&[("__name__", "metric"), ("instance", "a")]), 11.0),
            ],
            _ => vec![],
        })
    })
}

fn run(text: &str, data: Value) -> Result<String, String> {
    let funcs = prometheus_funcs(Some(query()), "http://testhost:9090/path/prefix");
    Template::parse("test", text, funcs)
        .map_err(|e| e.to_string())?
        .execute(data)
        .map_err(|e| e.to_string())
}

fn ok(text: &str, data: Value, want: &str) {
    assert_eq!(run(text, data).as_deref(), Ok(want), "{text}");
}

fn floats(v: &[f64]) -> Value {
    Value::list(v.iter().map(|f| Value::Float(*f)).collect())
}

fn strings(v: &[&str]) -> Value {
    Value::list(v.iter().map(|s| Value::from(*s)).collect())
}

fn ints(v: &[i64]) -> Value {
    Value::list(v.iter().map(|i| Value::Int(*i)).collect())
}

const RANGE: &str = "{{ range . }}{{ F . }}:{{ end }}";

fn each(func: &str, data: Value, want: &str) {
    ok(&RANGE.replace('F', func), data, want);
}

#[test]
fn queries() {
    ok("{{ query \"1.5\" | first | value }}", Value::Nil, "1.5");
    ok("{{ query \"metric{instance='a'}\" | first | value }}", Value::Nil, "11");
    ok(
        "{{ query \"metric{instance='a'}\" | first | label \"instance\" }}",
        Value::Nil,
        "a",
    );
    ok(
        "{{ query \"metric{__value__='a'}\" | first | strvalue }}",
        Value::Nil,
        "a",
    );
    ok(
        "{{ query \"metric{instance='a'}\" | first | label \"foo\" }}",
        Value::Nil,
        "",
    );
    ok(
        "{{ $x := query \"metric\" | first }}{{ $x.Labels.foo }}",
        Value::Nil,
        "",
    );
    ok(
        "{{ range query \"metric\" | sortByLabel \"instance\" }}{{.Labels.instance}}:{{.Value}}: {{end}}",
        Value::Nil,
        "a:11: b:21: ",
    );
    ok(
        "{{ with query \"nosuch\" }}x{{ else }}empty{{ end }}",
        Value::Nil,
        "empty",
    );
    assert_eq!(
        run("{{ query \"missing\" | first }}", Value::Nil).unwrap_err(),
        "template: test:1:21: executing \"test\" at <first>: error calling first: first() called on vector with no elements"
    );
}

#[test]
fn args_and_defines() {
    ok(
        "{{define \"x\"}}{{.arg0}} {{.arg1}}{{end}}{{template \"x\" (args 1 \"2\")}}",
        Value::Nil,
        "1 2",
    );
    ok(
        "{{ define \"x\" }}{{ .arg0 }}-{{ .arg2 }}{{ end }}{{ template \"x\" (args 1 2) }}",
        Value::Nil,
        "1-<no value>",
    );
    ok("{{ args 1 \"a\" }}", Value::Nil, "map[arg0:1 arg1:a]");
}

#[test]
fn strip_port_and_domain() {
    let inputs = [
        "foo.example.com",
        "foo.example.com:12345",
        "192.0.2.1",
        "192.0.2.1:12345",
        "2001:0DB8::1",
        "[2001:0DB8::1]:12345",
        "[2001:0DB8::1]::12345",
    ];
    let data = strings(&inputs);
    ok(
        "{{ range . }}{{ stripPort . }}:{{ end }}",
        data.clone(),
        "foo.example.com:foo.example.com:192.0.2.1:192.0.2.1:2001:0DB8::1:2001:0DB8::1:[2001:0DB8::1]::12345:",
    );
    ok(
        "{{ range . }}{{ stripDomain . }}:{{ end }}",
        data,
        "foo:foo:12345:192.0.2.1:192.0.2.1:12345:2001:0DB8::1:[2001:0DB8::1]:12345:[2001:0DB8::1]::12345:",
    );
    ok(
        "{{ stripDomain \"a.b.c:80\" }} {{ stripDomain \"[a.b]:80\" }}",
        Value::Nil,
        "a:80 a:80",
    );
}

#[test]
fn humanize_family() {
    each("humanize", floats(&[0.0, 1.0, 1234567.0, 0.12]), "0:1:1.235M:120m:");
    each(
        "humanize",
        strings(&["0.0", "1.0", "1234567.0", ".12"]),
        "0:1:1.235M:120m:",
    );
    each(
        "humanize",
        ints(&[0, -1, 1, 1234567, i64::MAX]),
        "0:-1:1:1.235M:9.223E:",
    );
    each("humanize1024", floats(&[0.0, 1.0, 1048576.0, 0.12]), "0:1:1Mi:0.12:");
    each(
        "humanize1024",
        ints(&[0, -1, 1, 1234567, i64::MAX]),
        "0:-1:1:1.177Mi:8Ei:",
    );
    each(
        "humanizeDuration",
        floats(&[
            0.0,
            1.0,
            60.0,
            3600.0,
            86400.0,
            86400.0 + 3600.0,
            -(3.0 * 86400.0 + 3.0 * 3600.0 + 4.0 * 60.0 + 5.0) + 86400.0,
            899.99,
        ]),
        "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:",
    );
    each(
        "humanizeDuration",
        strings(&["0", "1", "60", "3600", "86400"]),
        "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:",
    );
    each(
        "humanizeDuration",
        floats(&[0.1, 0.0001, 0.12345, 60.1, 60.5, 1.2345, 12.345]),
        "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:",
    );
    each(
        "humanizeDuration",
        ints(&[0, -1, 1, 1234567]),
        "0s:-1s:1s:14d 6h 56m 7s:",
    );
    ok(
        "{{ range . }}{{humanize .}}:{{humanize1024 .}}:{{humanizeDuration .}}:{{humanizeTimestamp .}}:{{ end }}",
        floats(&[f64::INFINITY, f64::NEG_INFINITY, f64::NAN]),
        "+Inf:+Inf:+Inf:+Inf:-Inf:-Inf:-Inf:-Inf:NaN:NaN:NaN:NaN:",
    );
    ok(
        "{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:{{ 0.1234567 | humanizePercentage }}:{{ 1.23456 | humanizePercentage }}",
        Value::Nil,
        "-22.22%:0%:12.35%:123.5%",
    );
    each(
        "humanizePercentage",
        ints(&[0, -1, 1, 1234567, i64::MAX]),
        "0%:-100%:100%:1.235e+08%:9.223e+20%:",
    );
    each(
        "humanizeTimestamp",
        ints(&[0, -1, 1, 1234567, 9223372036]),
        "1970-01-01 00:00:00 +0000 UTC:1969-12-31 23:59:59 +0000 UTC:1970-01-01 00:00:01 +0000 UTC:1970-01-15 06:56:07 +0000 UTC:2262-04-11 23:47:16 +0000 UTC:",
    );
    ok(
        "{{ 1435065584.128 | humanizeTimestamp }}",
        Value::Nil,
        "2015-06-23 13:19:44.128 +0000 UTC",
    );
    ok(
        "{{ \"1435065584.128\" | humanizeTimestamp }}",
        Value::Nil,
        "2015-06-23 13:19:44.128 +0000 UTC",
    );
    ok("{{ (1435065584.128 | toTime).Format \"2006\" }}", Value::Nil, "2015");
    // Observed from the 2.42 binary.
    for (input, want) in [
        ("999.99", "1000"),
        ("1000", "1k"),
        ("999999", "1000k"),
        ("-1234567", "-1.235M"),
        ("1e27", "1000Y"),
        ("0.5", "500m"),
        ("0.001", "1m"),
        ("0.0012345", "1.234m"),
        ("1e-9", "1n"),
        ("-0.02", "-20m"),
        ("12345.6789", "12.35k"),
        ("1e30", "1e+06Y"),
    ] {
        ok(&format!("{{{{ humanize {input} }}}}"), Value::Nil, want);
    }
    for (input, want) in [
        ("1023", "1023"),
        ("1024", "1ki"),
        ("1536", "1.5ki"),
        ("-2048", "-2ki"),
        ("0.5", "0.5"),
        ("1.5", "1.5"),
    ] {
        ok(&format!("{{{{ humanize1024 {input} }}}}"), Value::Nil, want);
    }
    for (input, want) in [
        ("59.999", "60s"),
        ("3599.9", "59m 59s"),
        ("90061", "1d 1h 1m 1s"),
        ("0.5", "500ms"),
        ("-0.5", "-500ms"),
    ] {
        ok(&format!("{{{{ humanizeDuration {input} }}}}"), Value::Nil, want);
    }
    ok(
        "{{ humanizeTimestamp 1.5 }}",
        Value::Nil,
        "1970-01-01 00:00:01.5 +0000 UTC",
    );
    ok(
        "{{ humanizeTimestamp -1.5 }}",
        Value::Nil,
        "1969-12-31 23:59:58.5 +0000 UTC",
    );
    ok(
        "{{ humanizeTimestamp 1.0005 }}",
        Value::Nil,
        "1970-01-01 00:00:01 +0000 UTC",
    );
    assert!(run("{{ humanizeTimestamp 1e10 }}", Value::Nil)
        .unwrap_err()
        .ends_with("error calling humanizeTimestamp: 1e+10 cannot be represented as a nanoseconds timestamp since it overflows int64"));
    assert_eq!(
        run("{{ humanize \"one\" }}", Value::Nil).unwrap_err(),
        "template: test:1:3: executing \"test\" at <humanize \"one\">: error calling humanize: strconv.ParseFloat: parsing \"one\": invalid syntax"
    );
    assert!(
        run("{{ humanize true }}", Value::Nil)
            .unwrap_err()
            .ends_with("can't convert bool to float")
    );
}

#[test]
fn strings_links_and_durations() {
    ok("{{ \"aa bb CC\" | title }}", Value::Nil, "Aa Bb CC");
    ok(
        "{{ \"don't stop-me now_x\" | title }}",
        Value::Nil,
        "Don'T Stop-Me Now_x",
    );
    ok("{{ \"aa bb CC\" | toUpper }}", Value::Nil, "AA BB CC");
    ok("{{ \"aA bB CC\" | toLower }}", Value::Nil, "aa bb cc");
    ok("{{ \"straße\" | toUpper }}", Value::Nil, "STRAßE");
    ok(
        "{{ match \"a+\" \"aa\" }} {{ match \"a+\" \"b\" }}",
        Value::Nil,
        "true false",
    );
    ok("{{ reReplaceAll \"(a)b\" \"x$1\" \"ab\" }}", Value::Nil, "xa");
    ok("{{ reReplaceAll \"a(b)\" \"${1}x\" \"abab\" }}", Value::Nil, "bxbx");
    ok("{{ reReplaceAll \"a(b)\" \"$1x\" \"abab\" }}", Value::Nil, "");
    ok("{{ reReplaceAll \"(?P<n>b)\" \"<$n>\" \"abc\" }}", Value::Nil, "a<b>c");
    ok("{{ graphLink \"up\" }}", Value::Nil, "/graph?g0.expr=up&g0.tab=0");
    ok("{{ tableLink \"up\" }}", Value::Nil, "/graph?g0.expr=up&g0.tab=1");
    ok(
        "{{ graphLink \"sum by (job) (up{job=\\\"a b\\\"})\" }}",
        Value::Nil,
        "/graph?g0.expr=sum+by+%28job%29+%28up%7Bjob%3D%22a+b%22%7D%29&g0.tab=0",
    );
    ok("{{ pathPrefix }}", Value::Nil, "/path/prefix");
    ok("{{ externalURL }}", Value::Nil, "http://testhost:9090/path/prefix");
    ok(
        "{{ printf \"%0.2f\" (parseDuration \"1h2m10ms\") }}",
        Value::Nil,
        "3720.01",
    );
    ok(
        "{{ parseDuration \"1d\" }} {{ parseDuration \"1m30s\" }} {{ parseDuration \"500ms\" }}",
        Value::Nil,
        "86400 90 0.5",
    );
    ok("{{ safeHtml \"<b>\" }}", Value::Nil, "<b>");
}

#[test]
fn alert_templates_see_prometheus_variables_and_errors_become_the_value() {
    let funcs = prometheus_funcs(None, "http://example.com:9090/prom");
    let data = TemplateData {
        labels: Labels::from_pairs([("__name__", "metric"), ("instance", "h1:9100"), ("job", "j")]).unwrap(),
        external_labels: Arc::new(Labels::from_pairs([("cluster", "c1"), ("severity", "ext")]).unwrap()),
        external_url: "http://example.com:9090/prom".into(),
        value: 1234.5678,
    };
    let t = |text: &str| {
        AlertTemplate::parse("AlwaysFiring", text, &funcs)
            .unwrap()
            .expand(&data)
    };
    assert_eq!(t("{{ $labels }}"), "map[__name__:metric instance:h1:9100 job:j]");
    assert_eq!(t("{{ $externalLabels }}"), "map[cluster:c1 severity:ext]");
    assert_eq!(t("{{ $value }}"), "1234.5678");
    assert_eq!(
        t("{{ $labels.instance }} {{ .Labels.job }} {{ $externalURL }}"),
        "h1:9100 j http://example.com:9090/prom"
    );
    assert_eq!(t("{{ $labels.nope }}"), "");
    assert_eq!(
        t("{{ humanize \"abc\" }}"),
        "<error expanding template: error executing template __alert_AlwaysFiring: template: __alert_AlwaysFiring:1:115: executing \"__alert_AlwaysFiring\" at <humanize \"abc\">: error calling humanize: strconv.ParseFloat: parsing \"abc\": invalid syntax>"
    );
    assert!(t("{{ .Foo }}").contains("can't evaluate field Foo in type struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }"));
    assert!(t("{{ if gt $value 1 }}x{{ end }}").contains("error calling gt: incompatible types for comparison"));
    assert_eq!(t("{{ if gt $value 1.0 }}big{{ end }}"), "big");
    // Parse errors are promtool's.
    assert_eq!(
        AlertTemplate::parse("A", "{{ nofunc }}", &funcs).unwrap_err(),
        "template: __alert_A:1: function \"nofunc\" not defined"
    );
    assert_eq!(
        AlertTemplate::parse("A", "{{ $undefinedvar }}", &funcs).unwrap_err(),
        "template: __alert_A:1: undefined variable \"$undefinedvar\""
    );
}
